{ fixed = "a"; }
