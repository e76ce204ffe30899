{ config.name = "n"; count = 3; }
