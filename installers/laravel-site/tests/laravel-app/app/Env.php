<?php

namespace App;

/** Reads the release's .env (a symlink to the shared one), like Laravel's dotenv loader. */
final class Env
{
    /** @return array<string, string> */
    public static function load(string $path): array
    {
        $values = [];
        foreach (file($path, FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES) ?: [] as $line) {
            if ($line[0] === '#' || !str_contains($line, '=')) {
                continue;
            }
            [$key, $value] = explode('=', $line, 2);
            $value = trim($value);
            if (strlen($value) >= 2 && $value[0] === '"' && substr($value, -1) === '"') {
                $value = stripcslashes(substr($value, 1, -1));
            }
            $values[trim($key)] = $value;
        }
        return $values;
    }

    /** @param array<string, string> $env */
    public static function pdo(array $env): \PDO
    {
        $connection = $env['DB_CONNECTION'] ?? 'sqlite';
        if ($connection === 'sqlite') {
            return new \PDO('sqlite:' . $env['DB_DATABASE']);
        }
        $dsn = sprintf('%s:host=%s;port=%s;dbname=%s', $connection, $env['DB_HOST'], $env['DB_PORT'], $env['DB_DATABASE']);
        return new \PDO($dsn, $env['DB_USERNAME'], $env['DB_PASSWORD']);
    }
}
