# Evaluates a Landscaper deployment for the engine. The engine writes a
# context file (see eval.go) and runs this with nix-instantiate --eval --json.
#
# Every output of every member is either a value the engine knows or a
# stand-in token. Members are evaluated twice, with two unrelated token
# spellings, so the engine can tell inputs that only pass a token through
# (the real value can be substituted) from inputs that compute with it
# (evaluate again once it is known); and once with every output throwing,
# which finds the parts that use an output at all. A member that uses no
# output is settled by that evaluation alone; of one that uses outputs in
# some parts of its inputs, the other evaluations read only those parts.
{ contextFile }:
let
  ctx = builtins.fromJSON (builtins.readFile contextFile);

  # What the file or the flake holds: a deployment function, or a module.
  declaration =
    if ctx.flake == null then import ctx.file
    else if ctx.flakeAttr == null then (builtins.getFlake ctx.flake).outputs.landscaper
    else
      let
        all = (builtins.getFlake ctx.flake).outputs.landscaperDeployments or { };
        names = builtins.attrNames all;
      in
      if all ? ${ctx.flakeAttr} then all.${ctx.flakeAttr}
      else throw "landscaper: the flake ${ctx.flake} has no landscaperDeployments.${ctx.flakeAttr}${if names == [ ] then "" else " (it has ${builtins.concatStringsSep ", " names})"}";
  # Where the deployment is, as module errors name it.
  source =
    if ctx.flake == null then ctx.file
    else if ctx.flakeAttr == null then "${ctx.flake}#landscaper"
    else "${ctx.flake}#landscaperDeployments.${ctx.flakeAttr}";

  # The module system and the `lib` modules receive. A stand-in token
  # passes every option type's check: it is checked once it is known.
  lib = import ./lib { inherit isStandIn; };
  isStandIn = v: builtins.isString v && builtins.length (builtins.split "@@ls'|%%LANDSCAPER" v) > 1;

  # A deployment is a module when it is an attribute set, or a function
  # whose result has `imports`, `options` or `config`. Any other deployment
  # is a function returning members, providers and rollouts, and is
  # evaluated as such (checkTop).
  isModule = d: builtins.isAttrs d || (builtins.isFunction d &&
    (let
      formals = builtins.functionArgs d;
      probe = {
        members = { };
        providers = providerTypes;
        landscaper = landscaperArgument;
        inherit lib;
        config = throw "landscaper: ${source}: which attributes the deployment has may not depend on `config`";
        options = throw "landscaper: ${source}: which attributes the deployment has may not depend on `options`";
      };
      r = d (if formals == { } then probe else builtins.intersectAttrs formals probe);
    in
    builtins.isAttrs r && (r ? imports || r ? options || r ? config)));

  # What Landscaper gives modules beside lib, config, options, members and
  # providers: the modules it ships, to import.
  landscaperArgument = {
    modules.machines = ./modules/machines.nix;
  };

  # A module deployment, evaluated with the options of modules/deployment.nix.
  asModule = d: args:
    let
      evaluated = lib.evalModules {
        modules = [
          { _file = "<landscaper>"; imports = [ (import ./modules/deployment.nix) ]; }
          { _file = source; imports = [ d ]; }
        ];
        specialArgs = { inherit (args) members providers; landscaper = landscaperArgument; };
      };
    in
    { inherit (evaluated.config) members providers rollouts; };

  deployment = if isModule declaration then asModule declaration else checkTop declaration;

  # The deployment's top-level attributes must be ones Landscaper knows: any
  # other (`member`, a typo) is an error naming it, with the known name it
  # is closest to (edit distance) when there is a close one.
  checkTop = f: args:
    let
      r = f args;
      known = [ "members" "providers" "rollouts" ];
      unknown = builtins.filter (n: !(builtins.elem n known)) (builtins.attrNames r);
      name = builtins.head unknown;
    in
    if !(builtins.isAttrs r) then throw "landscaper: the deployment must return an attribute set, such as { members = { ... }; }"
    else if unknown == [ ] then r
    else throw "landscaper: unknown top-level attribute ${builtins.toJSON name} in the deployment${lib.didYouMean name known} (a deployment has `members`, `providers` and `rollouts`)";

  resourceType = provider: name: outputs: {
    _type = "landscaperResourceType";
    inherit provider name outputs;
  };

  providerTypes = builtins.mapAttrs
    (p: types: builtins.mapAttrs (t: outputs: resourceType p t outputs) types)
    ctx.types;

  # The type of a member: providers.<p>.<t>, or the string "<p>.<t>".
  typeOf = key: m:
    if !(m ? type) then
      throw "landscaper: member ${key}: no `type` (expected type = providers.<provider>.<type>)"
    else if builtins.isAttrs m.type && (m.type._type or null) == "landscaperResourceType" then
      m.type
    else if builtins.isString m.type then
      let parts = builtins.match "([^.]+)\\.([^.]+)" m.type; in
      if parts == null then
        throw "landscaper: member ${key}: type \"${m.type}\" is not of the form <provider>.<type>"
      else
        let p = builtins.elemAt parts 0; t = builtins.elemAt parts 1; in
        if !(providerTypes ? ${p}) then
          throw "landscaper: member ${key}: unknown provider \"${p}\" in type \"${m.type}\""
        else if !(providerTypes.${p} ? ${t}) then
          throw "landscaper: member ${key}: provider ${p} has no resource type \"${t}\" (it has ${builtins.concatStringsSep ", " (builtins.attrNames providerTypes.${p})})"
        else providerTypes.${p}.${t}
    else
      throw "landscaper: member ${key}: `type` must be a value from providers.<provider>.<type>";

  # Names are shown with toJSON, which escapes control characters, so an
  # error about a name cannot act on the terminal. A name computed from an
  # output holds a token (with a line break in it) until the output is
  # known; it is checked again then.
  checkName = key: n:
    let
      shown = builtins.toJSON key;
      holds = re: builtins.length (builtins.split re n) > 1;
    in
    if builtins.match "[^.#\n]+" n != null then n
    else if n == "" then throw "landscaper: member ${shown} has an empty name; give it a name"
    else if holds "[.]" then throw "landscaper: member name ${shown} holds '.' in a name; '.' separates the names of nested members"
    else if holds "#" then throw "landscaper: member name ${shown} holds '#', which Landscaper keeps for output references"
    else if holds "[\n]" && !(holds "@@ls'|%%LANDSCAPER") then throw "landscaper: member name ${shown} holds a line break; names are one line"
    else n;

  # A stand-in token. `id` identifies the output; the special characters
  # make escaping functions mangle the token, which the engine notices.
  token = spelling: key:
    let
      forced = if traces spelling then builtins.trace "landscaper-forced:${key}" else (x: x);
      a = "@@ls'\"\\$<&> \n" + builtins.substring 0 24 (builtins.hashString "sha256" (ctx.nonceA + key)) + "@@";
      b = "%%LANDSCAPER\t'\"\\$<&>|" + builtins.hashString "sha256" (ctx.nonceB + key) + "%%";
    in
    if spelling == "c" then throw "landscaper-unknown-output"
    else forced (if spelling == "a" || spelling == "s" then a else b);

  # The fourth spelling, "k", uses the values in ctx.knownCheck: comparing
  # it with spelling "a" after substitution shows members whose inputs use
  # an output in a way the tokens do not show. The known values are in
  # files of their own, read only when an output is looked up: a
  # deployment that uses few outputs does not pay for parsing them all.
  knownFor = spelling:
    if spelling == "k" then knownCheck
    else if ctx.mode != "plan" || spelling == "s" then known
    else { };
  known = if ctx.knownFile == null then { } else builtins.fromJSON (builtins.readFile ctx.knownFile);
  knownCheck = builtins.fromJSON (builtins.readFile ctx.knownCheckFile);

  evaluate = spelling: evaluateWith spelling false;

  # With ctx.guarded, the members are those that can be enumerated while
  # every unknown output throws (a composite whose members are computed
  # from one, say with builtins.fromJSON, is left out): the engine plans
  # them while the rest waits for those outputs. Each is reached by its
  # path, so that no spelling enumerates the composites left out.
  guardedEntries = builtins.filter (r: !(r.whole or false)) cSelected;
  # Of those, the ones spelling "c" did not settle: the only ones the
  # other spellings of mode "plan" evaluate (listed once for all of them,
  # not filtered out of every member again by each).
  unsettledEntries = builtins.filter (r: !(settled ? ${r.key})) guardedEntries;
  # The members spelling "c" selects, computed once per evaluation: the
  # guarded members and spelling "c" itself use them.
  cSelected = evaluateWith "c" true;
  # ctx.only as a set: membership in constant time (a list would make
  # selecting N members out of N quadratic).
  onlySet = if ctx.only == null then null else builtins.listToAttrs (map (p: { name = p; value = true; }) ctx.only);

  # Mode "plan" is modes "paths" and "members" in one evaluation: the
  # structure in spelling "s" (spelling "a" with the known values, traced),
  # then the members it found whose names hold no stand-in, as mode
  # "members" evaluates them (guarded, without the known values but for
  # spelling "k").
  planMode = ctx.mode == "plan";
  structure = evaluate "s";
  onlyFor = spelling:
    if !planMode then onlySet
    else if spelling == "s" then null
    else structureOnly;
  # The members of the structure whose names hold no stand-in, as a set:
  # made once, for every spelling.
  structureOnly = builtins.listToAttrs (map (r: { name = r.path; value = true; }) (builtins.filter (r: !(isStandIn r.path) && !(aloneSet ? ${r.path})) structure));
  # ctx.alone: members the last run found computing with outputs. Mode
  # "plan" evaluates each of them once, in an application of the
  # deployment of its own with the known values (mode "trace" with its
  # inputs), instead of in the spellings: the engine keeps the result
  # while every output it forced keeps the value it was given.
  aloneSet = builtins.listToAttrs (map (p: { name = p; value = true; }) (ctx.alone or [ ]));
  aloneFound = builtins.filter (r: aloneSet ? ${r.path}) structure;
  guardedFor = spelling: if planMode && spelling != "s" then true else ctx.guarded or false;
  traces = spelling: ctx.traceForced && (!planMode || spelling == "s");
  memberAt = ms: names:
    let m = ms.${builtins.head names}; in
    if builtins.length names == 1 then m else memberAt m.members (builtins.tail names);

  evaluateWith = spelling: raw:
    let
      result = deployment arguments;
      arguments = {
        members = view [ ] (result.members or { });
        providers = providerTypes;
      };
      view = prefix: ms: builtins.mapAttrs
        (n: m:
          let
            path = prefix ++ [ (checkName (builtins.concatStringsSep "." (prefix ++ [ n ])) n) ];
            key = builtins.concatStringsSep "." path;
          in
          if builtins.isAttrs m && m ? members && !(m ? type) then {
            members = view path m.members;
          } else {
            inputs = m.inputs or { };
            outputs = builtins.listToAttrs (map
              (o: {
                name = o;
                value =
                  let known = knownFor spelling; in
                  if known ? ${key} && known.${key} ? ${o}
                  then
                    # The structure's trace shows known outputs it uses too:
                    # a plan that changes one has not decided the structure.
                    (if (ctx.traceKnown or false) && traces spelling then builtins.trace "landscaper-forced:${key}#${o}" else (x: x))
                      known.${key}.${o}
                  else token (if spelling == "k" then "a" else spelling) "${key}#${o}";
              })
              (typeOf key m).outputs);
          })
        ms;
      # Resource members, flattened to their paths. Every name is checked
      # here, not only where an output is used: "a.b" and a.members.b would
      # otherwise both be the member a.b.
      resources = prefix: ms: builtins.concatMap
        (n:
          let
            m = ms.${n};
            path = prefix ++ [ (checkName (builtins.concatStringsSep "." (prefix ++ [ n ])) n) ];
            key = builtins.concatStringsSep "." path;
          in
          if !(builtins.isAttrs m) then
            throw "landscaper: member ${key} is not an attribute set"
          else if m ? members && !(m ? type) then resources path m.members
          else
            let
              extra = builtins.filter (a: a != "type" && a != "inputs") (builtins.attrNames m);
            in
            if extra != [ ] then
              throw "landscaper: member ${key}: unknown attribute `${builtins.head extra}` (a member has `type` and `inputs`, or `members`)"
            else [{ inherit key m; }])
        (builtins.attrNames ms);
      # In the third evaluation every output throws: a composite whose
      # members depend on an output is left out (the structure evaluation
      # decides it), and each member reports which parts of its inputs
      # force an output.
      guardedResources = prefix: ms: builtins.concatMap
        (n:
          let
            t = builtins.tryEval ms.${n};
            m = t.value;
            path = prefix ++ [ (checkName (builtins.concatStringsSep "." (prefix ++ [ n ])) n) ];
            key = builtins.concatStringsSep "." path;
          in
          # A member or composite whose very definition needs an output
          # is reported whole.
          if !t.success then [{ inherit key; whole = true; }]
          else if !(builtins.isAttrs m) then [ ]
          else if m ? members && !(m ? type) then
            let sub = builtins.tryEval (builtins.attrNames m.members); in
            if sub.success then guardedResources path m.members else [{ inherit key; whole = true; }]
          else [{ inherit key path m; whole = false; }])
        (let names = builtins.tryEval (builtins.attrNames ms); in if names.success then names.value else [ ]);
      selected =
        let
          all =
            if spelling == "c" then guardedResources [ ] (result.members or { })
            else if guardedFor spelling then
              map (r: { inherit (r) key; m = memberAt (result.members or { }) r.path; }) (if planMode then unsettledEntries else guardedEntries)
            else resources [ ] (result.members or { });
        in
        if spelling == "c" && !raw then cSelected
        else
          let
            # Spelling "c" itself decides what is settled; the structure
            # lists every member.
            skip =
              if spelling == "c" || spelling == "s" then { }
              else if spelling == "b" then settled // computing
              else if spelling == "k" then settled // unchecked
              else settled;
          in
          let only = onlyFor spelling; in
          if only == null && skip == { } then all
          else builtins.filter (r: (r.whole or false) || ((only == null || only ? ${r.key}) && !(skip ? ${r.key}))) all;
      encode = r:
        let
          # Of a member spelling "c" masked, only the parts that use an
          # output: the rest was read whole there and is the same in
          # every spelling (a NixOS toplevel beside an output, say).
          parts = if spelling != "c" && masked ? ${r.key} then masked.${r.key} else null;
          json = builtins.toJSON (if parts == null then r.m.inputs or { } else map (p: partAt p (r.m.inputs or { })) parts);
        in
        encodeJSON r json // (if parts == null then { } else { parts = true; });
      encodeJSON = r: json:
        let ty = typeOf r.key r.m; in
        {
          path = r.key;
          type = "${ty.provider}.${ty.name}";
          inputs = builtins.unsafeDiscardStringContext json;
          context = builtins.getContext json;
        };
      # failingParts lists the paths (as lists of names and indexes) of the
      # parts of v whose evaluation throws, stopping at the first level that
      # throws.
      failingParts = at: v:
        let t = builtins.tryEval v; in
        if !t.success then [ at ]
        else if builtins.isAttrs t.value && t.value ? outPath then
          (if (builtins.tryEval (toString t.value.outPath)).success then [ ] else [ at ])
        else if builtins.isAttrs t.value then
          builtins.concatMap (n: failingParts (at ++ [ n ]) t.value.${n}) (builtins.attrNames t.value)
        else if builtins.isList t.value then
          builtins.concatLists (builtins.genList (i: failingParts (at ++ [ i ]) (builtins.elemAt t.value i)) (builtins.length t.value))
        else if (builtins.tryEval (builtins.deepSeq t.value true)).success then [ ]
        else [ at ];
      # A member whose inputs the third evaluation reads whole, touching
      # no output, is settled there: its inputs are final, and the other
      # spellings would only evaluate them again (a NixOS toplevel, say).
      # A member that uses outputs in some parts of its inputs only gets
      # the rest here, with those parts null (masked): the other
      # spellings evaluate only the parts.
      encodeFailing = r:
        let
          # Most members use no output: their inputs convert to JSON
          # whole (every part read, none throwing), which settles them at
          # once; only the others are searched part by part.
          whole = builtins.tryEval (builtins.toJSON (r.m.inputs or { }));
          failing = if r.whole then [ [ ] ] else if whole.success then [ ] else failingParts [ ] (r.m.inputs or { });
        in
        if failing == [ ] then encodeJSON r whole.value // { inherit failing; }
        else if builtins.elem [ ] failing then { path = r.key; inherit failing; }
        else
          let json = builtins.toJSON (mask (partTree failing) (r.m.inputs or { })); in
          {
            path = r.key;
            inherit failing;
            masked = builtins.unsafeDiscardStringContext json;
            maskedContext = builtins.getContext json;
          };
      encodePath = r:
        let ty = typeOf r.key r.m; in
        { path = r.key; type = "${ty.provider}.${ty.name}"; };
    in
    if raw then selected
    else if ctx.mode == "names" then map (r: { path = r.key; type = ""; }) selected
    else if spelling == "c" then map encodeFailing selected
    else map (if ctx.mode == "paths" || spelling == "s" then encodePath else encode) selected;

  # The third evaluation, and the members it settled (see encodeFailing):
  # the others are evaluated in spellings "a", "b" and "k", those it
  # masked only in the parts that use outputs.
  cResult = if ctx.twice then evaluate "c" else null;
  settled = if cResult == null then { } else
    builtins.listToAttrs (map (r: { name = r.path; value = true; }) (builtins.filter (r: r ? inputs) cResult));
  masked = if cResult == null then (if (ctx.masked or null) == null then { } else ctx.masked) else
    builtins.listToAttrs (map (r: { name = r.path; value = r.failing; }) (builtins.filter (r: r ? masked) cResult));

  # The value at a failing part's path (names and list indexes).
  partAt = path: v: builtins.foldl' (acc: step: if builtins.isInt step then builtins.elemAt acc step else acc.${step}) v path;
  # Failing paths as a tree: true where a part fails, else the steps
  # below by name (list indexes as strings).
  partTree = paths:
    if builtins.elem [ ] paths then true
    else builtins.mapAttrs (_: ps: partTree (map builtins.tail ps)) (builtins.groupBy (p: toString (builtins.head p)) paths);
  # v with the parts of the tree replaced by null.
  mask = t: v:
    if t == true then null
    else if builtins.isAttrs v then builtins.mapAttrs (n: x: if t ? ${n} then mask t.${n} x else x) v
    else if builtins.isList v then builtins.genList (i: let x = builtins.elemAt v i; in if t ? ${toString i} then mask t.${toString i} x else x) (builtins.length v)
    else v;

  # Of the members spelling "c" found using outputs, those whose inputs in
  # spelling "a" hold no token intact (no start of one): every token they
  # show is mangled and every part that shows none computes with outputs,
  # which the engine reads from "a" and "c" alone (and evaluates such a
  # member again once the outputs are known). Spelling "b" would only
  # evaluate them again: a NixOS toplevel built with a host's key, say.
  # Of those, the ones that cannot hide a mangled token either (no run of
  # hex digits as long as a token's id; the engine's mayHoldToken) are
  # left out of spelling "k" too, which would not tell more.
  aResult = evaluate "a";
  holds = re: m: builtins.length (builtins.split re m.inputs) > 1;
  computingList = if cResult == null then [ ] else builtins.filter (m: !(holds "@@ls" m)) aResult;
  pathSet = ms: builtins.listToAttrs (map (m: { name = m.path; value = true; }) ms);
  computing = pathSet computingList;
  unchecked = pathSet (builtins.filter (m: !(holds "[0-9a-f]{24}" m)) computingList);

  membersResult = {
    a = aResult;
    b = if ctx.twice then map (m: { inherit (m) path inputs; parts = m.parts or false; }) (evaluate "b") else null;
    c = cResult;
    k = if ctx.knownCheckFile != null then map (m: { inherit (m) path inputs; parts = m.parts or false; }) (evaluate "k") else null;
    computing = builtins.attrNames computing;
  };

  declared = builtins.mapAttrs
    (n: p:
      if builtins.isAttrs p && p ? executable
      then
        let exe = toString p.executable; in
        { executable = builtins.unsafeDiscardStringContext exe; context = builtins.getContext exe; }
        # A NixOps4 provider (protocol v0) says what its types are.
        // (if (p.protocol or null) == null then { } else {
          inherit (p) protocol;
          args = p.args or [ ];
          resourceTypes = p.resourceTypes or { };
        })
      else throw "landscaper: providers.${n}: a declared provider needs `executable`")
    (top.providers or { });

  # The deployment's declarations besides members, evaluated without any
  # member: providers and rollouts.
  top = deployment { members = { }; providers = providerTypes; };

  # Rollouts, checked by the engine: rollouts.<name> = { members = [ "h1"
  # ... ]; batchSize ? 1; maxFailures ? 0; }.
  rollouts = builtins.mapAttrs
    (n: r:
      if builtins.isAttrs r then r
      else throw "landscaper: rollouts.${n} must be an attribute set { members = [ ... ]; batchSize ? 1; maxFailures ? 0; }")
    (top.rollouts or { });

  # Mode "trace": which outputs each member of ctx.only forces, the known
  # values of ctx.known given as they are. Each member is evaluated in an
  # application of the deployment of its own, whose outputs name that
  # member when forced ("landscaper-forced-by:" and a JSON list of the
  # member and the output): a value two members share is forced once per
  # application, so what one forces is never credited to the other. With
  # ctx.traceKnown the known values report themselves too; with
  # ctx.withInputs each member's inputs come back as mode "members" gives
  # them. Of a member with masked parts only those parts are evaluated. A
  # member whose inputs throw reports what it forced before; `ok` says
  # which.
  traceOne = path:
    let
      result = deployment { members = tracedView [ ] (result.members or { }); providers = providerTypes; };
      tracedView = prefix: ms: builtins.mapAttrs
        (n: m:
          let
            at = prefix ++ [ (checkName (builtins.concatStringsSep "." (prefix ++ [ n ])) n) ];
            key = builtins.concatStringsSep "." at;
          in
          if builtins.isAttrs m && m ? members && !(m ? type) then { members = tracedView at m.members; }
          else {
            inputs = m.inputs or { };
            outputs = builtins.listToAttrs (map
              (o: {
                name = o;
                value =
                  let mark = builtins.trace "landscaper-forced-by:${builtins.toJSON [ path "${key}#${o}" ]}"; in
                  if known ? ${key} && known.${key} ? ${o} then (if ctx.traceKnown then mark else (x: x)) known.${key}.${o}
                  else mark (token "a" "${key}#${o}");
              })
              (typeOf key m).outputs);
          })
        ms;
      m = memberAt (result.members or { }) (builtins.filter builtins.isString (builtins.split "[.]" path));
      inputs = m.inputs or { };
      json = builtins.toJSON (if masked ? ${path} then map (p: partAt p inputs) masked.${path} else inputs);
      ok = (builtins.tryEval (builtins.seq json true)).success;
      ty = typeOf path m;
    in
    { inherit path ok; } // (if !(ctx.withInputs or false || planMode) || !ok then { } else {
      type = "${ty.provider}.${ty.name}";
      inputs = builtins.unsafeDiscardStringContext json;
      context = builtins.getContext json;
      parts = masked ? ${path};
    });
in
if ctx.mode == "providers" then { providers = declared; inherit rollouts; }
else if ctx.mode == "paths" || ctx.mode == "names" then { paths = evaluate "a"; }
else if planMode then { paths = structure; members = membersResult; } // (if aloneSet == { } then { } else { alone = map (r: traceOne r.path) aloneFound; })
else if ctx.mode == "trace" then { traced = map traceOne ctx.only; }
else membersResult
