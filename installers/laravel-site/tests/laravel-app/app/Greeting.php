<?php

namespace App;

/** Proves that composer's autoloader was built for this release. */
final class Greeting
{
    public static function text(string $appName): string
    {
        return "Laravel fixture {$appName} is up";
    }
}
