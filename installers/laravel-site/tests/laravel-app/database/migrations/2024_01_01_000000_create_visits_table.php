<?php

return ['up' => 'CREATE TABLE IF NOT EXISTS visits (id INTEGER PRIMARY KEY, seen_at VARCHAR(32) NOT NULL)'];
