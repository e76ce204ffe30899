{ maybe = "set"; }
