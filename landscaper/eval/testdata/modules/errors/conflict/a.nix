{ name = "alpha"; }
