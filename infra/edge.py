"""What CloudFront does in front of the waiting room, read from template.yaml.

  python3 infra/edge.py routes [--also PATH...]
      Checks that every API path the pages call (the visitor page's ROUTES in room.js, the
      control panel's calls in panel.js) has a route on the public HTTP API and a CloudFront
      behaviour that sends it to the API. Non-zero when one has not: on AWS that call would
      fail. `--also` adds paths to check (the test command uses it to prove a miss is caught).

  python3 infra/edge.py nginx --listen PORT --origin HOST:PORT --dir DIR [--counter-port PORT]
      Writes DIR/nginx.conf: nginx configured as the template's distribution behaves, one
      location per cache behaviour, its cache key made from the behaviour's cache policy (the
      query strings and headers the policy keys on), the origin's Cache-Control honoured,
      concurrent misses collapsed (proxy_cache_lock) where CloudFront collapses them (MinTTL
      >= 1 s), conditional requests to the origin, stale-while-revalidate. With
      --counter-port, the edge reaches the origin through a second, plain server that logs
      every request it passes on: the origin requests, counted where they arrive.

Needs PyYAML (Debian's python3-yaml, or pip install pyyaml).
"""

import argparse
import fnmatch
import pathlib
import re
import sys

try:
    import yaml
except ImportError:  # pragma: no cover - the message is the point
    sys.exit("infra/edge.py needs PyYAML: apt-get install -y python3-yaml (or pip install pyyaml)")

ROOT = pathlib.Path(__file__).resolve().parent.parent

# CloudFront's managed cache policies the template names by id (AWS documentation, "Using the
# managed cache policies"): TTLs and what each keys on.
MANAGED_POLICIES = {
    "658327ea-f89d-4fab-a63d-7e88639e58f6": {  # CachingOptimized
        "MinTTL": 1, "DefaultTTL": 86400, "MaxTTL": 31536000,
        "ParametersInCacheKeyAndForwardedToOrigin": {
            "QueryStringsConfig": {"QueryStringBehavior": "none"},
            "HeadersConfig": {"HeaderBehavior": "none"},
        },
    },
    "4135ea2d-6df8-44a3-9df3-4b5a84be39ad": {  # CachingDisabled
        "MinTTL": 0, "DefaultTTL": 0, "MaxTTL": 0,
        "ParametersInCacheKeyAndForwardedToOrigin": {
            "QueryStringsConfig": {"QueryStringBehavior": "none"},
            "HeadersConfig": {"HeaderBehavior": "none"},
        },
    },
}


# Managed origin request policies (what reaches the origin beyond the cache key).
# b689b0a8... AllViewerExceptHostHeader: every query string, header (but Host) and cookie.
FORWARDS_ALL_QUERY_STRINGS = {"b689b0a8-53d0-40ab-baf2-68738e2966ac"}


class CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !Sub, !GetAtt...) read as {tag: value}."""


def _tagged(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {suffix: value}


CfnLoader.add_multi_constructor("!", _tagged)


def template():
    with open(ROOT / "template.yaml") as f:
        return yaml.load(f, Loader=CfnLoader)


def api_routes(tpl, api="PublicApi"):
    """Paths the HTTP API `api` routes to a function."""
    paths = set()
    for resource in tpl["Resources"].values():
        for event in (resource.get("Properties", {}).get("Events") or {}).values():
            props = event.get("Properties", {})
            if event.get("Type") == "HttpApi" and props.get("ApiId") == {"Ref": api}:
                paths.add(props["Path"])
    return paths


def api_routes_path(routes, path):
    for route in routes:
        if route == path:
            return True
        if route.endswith("/{proxy+}") and path.startswith(route[: -len("{proxy+}")]):
            return True
    return False


def distribution(tpl):
    return tpl["Resources"]["Distribution"]["Properties"]["DistributionConfig"]


def behaviour_for(dist, path):
    """The cache behaviour CloudFront picks for `path`: the first whose pattern matches."""
    for behaviour in dist.get("CacheBehaviors", []):
        if fnmatch.fnmatchcase(path, behaviour["PathPattern"]):
            return behaviour
    return None


def page_paths():
    """API paths the pages call: the visitor page's ROUTES and the control panel's api()."""
    room = (ROOT / "shared/web/assets/room.js").read_text()
    block = re.search(r"var ROUTES = \{(.*?)\};", room, re.S)
    if not block:
        sys.exit("room.js has no `var ROUTES = {...};` to read the page's routes from")
    paths = set(re.findall(r'"(/[^"]*)"', block.group(1)))
    panel = (ROOT / "shared/web/assets/panel.js").read_text()
    paths |= set(re.findall(r'api\("[A-Z]+",\s*"(/[^"?]*)"', panel))
    paths |= {p + "x" for p in re.findall(r'return "(/admin/[^"]*/)"', panel)}
    return sorted(paths)


def check_routes(extra):
    tpl = template()
    routes = api_routes(tpl)
    dist = distribution(tpl)
    problems = []
    paths = page_paths() + list(extra)
    for path in paths:
        behaviour = behaviour_for(dist, path)
        if behaviour is None or behaviour["TargetOriginId"] != "api":
            problems.append(f"{path}: no CloudFront behaviour sends it to the API")
        if not api_routes_path(routes, path):
            problems.append(f"{path}: no route on the public HTTP API")
    for path in paths:
        print(f"  {path}")
    for problem in problems:
        print(f"NOT ROUTED: {problem}")
    print(f"routes: {len(paths)} paths the pages call, {len(problems)} not routed")
    return 1 if problems else 0


# ---- nginx as CloudFront ------------------------------------------------------------------


def policy_of(tpl, behaviour):
    ref = behaviour["CachePolicyId"]
    if isinstance(ref, dict):
        return tpl["Resources"][ref["Ref"]]["Properties"]["CachePolicyConfig"]
    return MANAGED_POLICIES[ref]


def cache_key(policy):
    """nginx's cache key for what a cache policy keys on (path, query strings, headers)."""
    params = policy["ParametersInCacheKeyAndForwardedToOrigin"]
    qs = params["QueryStringsConfig"]
    behaviour = qs["QueryStringBehavior"]
    if behaviour == "none":
        query = ""
    elif behaviour == "all":
        query = "$is_args$args"
    elif behaviour == "whitelist":
        query = "?" + "&".join(f"{name}=$arg_{name}" for name in qs["QueryStrings"])
    else:
        raise SystemExit(f"query string behaviour {behaviour} is not modelled")
    headers = params["HeadersConfig"]
    keyed = headers.get("Headers", []) if headers["HeaderBehavior"] == "whitelist" else []
    header_part = "".join(f"|$http_{h.lower().replace('-', '_')}" for h in keyed)
    return f"$uri{query}{header_part}", query


def location(path_pattern):
    if path_pattern.endswith("/*"):
        return f"location {path_pattern[:-1]}"
    if "*" in path_pattern:
        raise SystemExit(f"path pattern {path_pattern} is not modelled")
    return f"location = {path_pattern}"


def location_block(tpl, pattern, behaviour, upstream):
    policy = policy_of(tpl, behaviour)
    key, forwarded_query = cache_key(policy)
    methods = " ".join(m for m in behaviour.get("AllowedMethods", ["GET", "HEAD"]) if m != "HEAD")
    lines = [f"    {pattern} {{"]
    # CloudFront refuses a method the behaviour does not allow (403).
    lines.append(f"        limit_except {methods} {{ deny all; }}")
    # The origin gets the query strings of the cache key, or all of them when the behaviour's
    # origin request policy forwards all.
    if behaviour.get("OriginRequestPolicyId") in FORWARDS_ALL_QUERY_STRINGS:
        forwarded_query = "$is_args$args"
    target = "$uri" + forwarded_query
    lines.append(f"        proxy_pass http://{upstream}{target};")
    if policy["MaxTTL"] == 0:
        lines.append("        proxy_cache off;")
    else:
        lines += [
            "        proxy_cache edge;",
            f'        proxy_cache_key "{key}";',
            # Used only when the origin sends no Cache-Control: the origin's word wins.
            f"        proxy_cache_valid 200 {policy['DefaultTTL']}s;",
            "        proxy_cache_revalidate on;",
            "        proxy_cache_use_stale updating;",
            "        proxy_cache_background_update on;",
        ]
        if policy["MinTTL"] >= 1:
            lines += ["        proxy_cache_lock on;", "        proxy_cache_lock_timeout 5s;"]
    lines.append("    }")
    return "\n".join(lines)


def nginx_conf(listen, origin, folder, counter_port):
    tpl = template()
    dist = distribution(tpl)
    upstream = f"127.0.0.1:{counter_port}" if counter_port else origin
    blocks = [location_block(tpl, location(b["PathPattern"]), b, upstream) for b in dist["CacheBehaviors"]]
    blocks.append(location_block(tpl, "location /", dist["DefaultCacheBehavior"], upstream))
    counter = ""
    if counter_port:
        counter = f"""
    # The origin's door: every request the edge sends the origin, logged where it arrives.
    server {{
        listen 127.0.0.1:{counter_port};
        access_log {folder}/origin.log edge;
        location / {{
            proxy_pass http://{origin};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
"""
    locations = "\n".join(blocks)
    return f"""# Generated by infra/edge.py from template.yaml: CloudFront's behaviours and cache policies
# as nginx locations. Do not edit; run the script again.
daemon on;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    client_body_temp_path {folder}/client;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    log_format edge '$msec "$request_method $request_uri" $status $upstream_cache_status $upstream_addr';
    proxy_cache_path {folder}/cache levels=1:2 keys_zone=edge:10m max_size=100m inactive=10m use_temp_path=off;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $host;
{counter}
    # The edge, as the template's distribution.
    server {{
        listen 127.0.0.1:{listen};
        access_log {folder}/edge.log edge;
{locations}
    }}
}}
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    routes = sub.add_parser("routes")
    routes.add_argument("--also", nargs="*", default=[])
    nginx = sub.add_parser("nginx")
    nginx.add_argument("--listen", required=True, type=int)
    nginx.add_argument("--origin", required=True)
    nginx.add_argument("--dir", required=True)
    nginx.add_argument("--counter-port", type=int)
    args = parser.parse_args()
    if args.command == "routes":
        return check_routes(args.also)
    folder = pathlib.Path(args.dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "nginx.conf").write_text(nginx_conf(args.listen, args.origin, folder, args.counter_port))
    print(folder / "nginx.conf")
    return 0


if __name__ == "__main__":
    sys.exit(main())
