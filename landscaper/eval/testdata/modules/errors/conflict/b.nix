{ name = "beta"; }
