{ nmae = "x"; }
