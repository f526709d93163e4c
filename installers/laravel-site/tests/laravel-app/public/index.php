<?php

// Front controller: autoloader, shared .env, database, shared storage, like a Laravel app.
require __DIR__ . '/../vendor/autoload.php';

use App\Env;
use App\Greeting;

$env = Env::load(__DIR__ . '/../.env');
$pdo = Env::pdo($env);
$pdo->setAttribute(\PDO::ATTR_ERRMODE, \PDO::ERRMODE_EXCEPTION);
$pdo->prepare('INSERT INTO visits (seen_at) VALUES (?)')->execute([gmdate('c')]);
$migrations = (int) $pdo->query('SELECT COUNT(*) FROM migrations')->fetchColumn();
$visits = (int) $pdo->query('SELECT COUNT(*) FROM visits')->fetchColumn();
file_put_contents(__DIR__ . '/../storage/logs/visits.log', gmdate('c') . "\n", FILE_APPEND);

header('Content-Type: text/plain');
echo Greeting::text($env['APP_NAME'] ?? 'app'), "\n";
echo "migrations={$migrations} visits={$visits}\n";
echo 'key=' . (str_starts_with($env['APP_KEY'] ?? '', 'base64:') ? 'set' : 'missing'), "\n";
