# Everyday functions on lists, strings and attribute sets, under the names
# module authors know from nixpkgs' lib. Together with builtins they make up
# most of the `lib` a deployment's modules receive.
let
  inherit (builtins) attrNames concatStringsSep elem filter foldl' genList
    isAttrs isList length listToAttrs map mapAttrs removeAttrs stringLength
    substring;
in
rec {
  id = x: x;
  const = x: _: x;

  optional = cond: x: if cond then [ x ] else [ ];
  optionals = cond: xs: if cond then xs else [ ];
  optionalAttrs = cond: set: if cond then set else { };
  optionalString = cond: s: if cond then s else "";
  toList = x: if isList x then x else [ x ];
  last = xs: builtins.elemAt xs (length xs - 1);
  range = first: last: if first > last then [ ] else genList (i: first + i) (last - first + 1);
  imap0 = f: xs: genList (i: f i (builtins.elemAt xs i)) (length xs);
  imap1 = f: xs: genList (i: f (i + 1) (builtins.elemAt xs i)) (length xs);
  reverseList = xs: let n = length xs; in genList (i: builtins.elemAt xs (n - i - 1)) n;
  unique = foldl' (kept: x: if elem x kept then kept else kept ++ [ x ]) [ ];
  flatten = x: if isList x then builtins.concatMap flatten x else [ x ];

  hasPrefix = prefix: s: substring 0 (stringLength prefix) s == prefix;
  hasSuffix = suffix: s:
    let n = stringLength s; k = stringLength suffix; in
    n >= k && substring (n - k) k s == suffix;
  concatStrings = concatStringsSep "";
  concatMapStrings = f: xs: concatStringsSep "" (map f xs);
  concatMapStringsSep = sep: f: xs: concatStringsSep sep (map f xs);

  nameValuePair = name: value: { inherit name value; };
  attrValues = set: map (n: set.${n}) (attrNames set);
  mapAttrs' = f: set: listToAttrs (map (n: f n set.${n}) (attrNames set));
  mapAttrsToList = f: set: map (n: f n set.${n}) (attrNames set);
  filterAttrs = pred: set: removeAttrs set (filter (n: !(pred n set.${n})) (attrNames set));
  genAttrs = names: f: listToAttrs (map (n: nameValuePair n (f n)) names);
  recursiveUpdate = lhs: rhs:
    lhs // mapAttrs
      (n: v: if isAttrs v && lhs ? ${n} && isAttrs lhs.${n} then recursiveUpdate lhs.${n} v else v)
      rhs;

  # didYouMean is "; did you mean `x`?" for the candidate closest to name
  # (by edit distance) when it is close enough, else "".
  didYouMean = name: candidates:
    let
      chars = s: genList (i: substring i 1 s) (stringLength s);
      min = x: y: if x < y then x else y;
      distance = a: b:
        let
          bs = chars b;
          step = row: c: foldl'
            (acc: j: acc ++ [ (min (min (builtins.elemAt row (j + 1) + 1) (last acc + 1)) (builtins.elemAt row j + (if c == builtins.elemAt bs j then 0 else 1))) ])
            [ (builtins.head row + 1) ]
            (genList (j: j) (length bs));
        in
        last (foldl' step (genList (j: j) (length bs + 1)) (chars a));
      closest = builtins.head (builtins.sort (x: y: distance name x < distance name y) candidates);
      d = distance name closest;
    in
    if candidates == [ ] then ""
    else if d <= 2 || d * 3 <= stringLength name then "; did you mean `${closest}`?"
    else "";
}
