{ count = "three"; }
