# enum, nullOr, either, oneOf, path, lines, nonEmptyStr, raw.
[
  ({ lib, ... }: {
    options = with lib.types; {
      color = lib.mkOption { type = enum [ "red" "green" ]; default = "red"; };
      maybe = lib.mkOption { type = nullOr str; default = null; };
      maybeSet = lib.mkOption { type = nullOr int; default = null; };
      both = lib.mkOption { type = nullOr (listOf int); default = null; };
      eitherOne = lib.mkOption { type = either int str; };
      eitherOther = lib.mkOption { type = either int (listOf str); };
      many = lib.mkOption { type = oneOf [ bool int str ]; };
      where = lib.mkOption { type = path; };
      text = lib.mkOption { type = lines; default = ""; };
      title = lib.mkOption { type = nonEmptyStr; };
      opaque = lib.mkOption { type = raw; };
    };
  })
  ({ lib, ... }: {
    color = "green";
    maybeSet = 4;
    both = [ 1 ];
    eitherOne = "x";
    eitherOther = [ "a" ];
    many = 3;
    where = "/srv/data";
    text = "line one";
    title = "t";
    opaque = { a = 1; };
  })
  ({ lib, ... }: {
    both = [ 2 ];
    eitherOther = [ "b" ];
    text = lib.mkAfter "line two";
  })
]
