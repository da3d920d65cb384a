#!/usr/bin/env python3
"""Using dynamo from Python with only the standard library (HTTP.md).

Two writers put a shopping cart at the same time, through two nodes; the
read shows both versions as siblings (300 Multiple Choices, with their
vector clocks); the reader merges them and writes the result with the
read's context, which replaces both.

    dynamo up --nodes 3 --detach
    DYNAMO_HOME=~/.local/share/dynamo python3 examples/http_client.py

It needs the home's ca.pem, client.pem and client.key, and reads the nodes'
HTTPS addresses from its cluster.toml.
"""

import http.client
import json
import os
import ssl
import sys
import urllib.parse

try:
    import tomllib
except ImportError:  # Python < 3.11: the two fields this needs, by hand.
    tomllib = None


def home():
    root = os.environ.get("DYNAMO_HOME")
    if not root:
        sys.exit("set DYNAMO_HOME to the cluster home (the folder with cluster.toml)")
    return root


def https_addresses(root):
    """Each node's (host, port) for HTTPS, from cluster.toml."""
    path = os.path.join(root, "cluster.toml")
    if tomllib:
        with open(path, "rb") as f:
            nodes = tomllib.load(f)["nodes"]
        found = [n["http"] for n in nodes if "http" in n]
    else:
        with open(path) as f:
            found = [line.split("=", 1)[1].strip().strip('"')
                     for line in f if line.startswith("http =")]
    if not found:
        sys.exit("cluster.toml names no HTTPS address; start the cluster with a newer dynamo")
    return [(a.rsplit(":", 1)[0], int(a.rsplit(":", 1)[1])) for a in found]


def tls_context(root):
    """Trust only the cluster's CA; present the cluster's client certificate."""
    context = ssl.create_default_context(cafile=os.path.join(root, "ca.pem"))
    context.load_cert_chain(os.path.join(root, "client.pem"), os.path.join(root, "client.key"))
    return context


class Node:
    def __init__(self, address, context):
        self.conn = http.client.HTTPSConnection(address[0], address[1], context=context, timeout=10)

    def request(self, method, path, body=None, headers=None):
        self.conn.request(method, path, body=body, headers=headers or {})
        response = self.conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()

    def put(self, bucket, key, value, context=None):
        headers = {"X-Dynamo-Context": context} if context else {}
        status, got, _ = self.request("PUT", path(bucket, key), value.encode(), headers)
        if status != 204:
            sys.exit(f"PUT {key}: {status}")
        return got.get("x-dynamo-context")

    def get(self, bucket, key):
        """(status, context, values): one value on 200, every sibling on 300."""
        status, headers, body = self.request("GET", path(bucket, key))
        if status == 200:
            return status, headers.get("x-dynamo-context"), [body.decode()]
        if status == 300:
            doc = json.loads(body)
            for s in doc["siblings"]:
                print(f"  sibling {s['value']!r} with clock {s['clock']}")
            return status, doc["context"], [s["value"] for s in doc["siblings"]]
        if status == 404:
            return status, headers.get("x-dynamo-context"), []
        sys.exit(f"GET {key}: {status} {body.decode()}")


def path(bucket, key):
    quote = lambda s: urllib.parse.quote(s, safe="")
    return f"/buckets/{quote(bucket)}/keys/{quote(key)}"


def main():
    root = home()
    addresses = https_addresses(root)
    context = tls_context(root)
    first, second = Node(addresses[0], context), Node(addresses[-1], context)

    # Two writers who read nothing first: both versions are kept.
    first.put("default", "cart-py", "milk")
    second.put("default", "cart-py", "eggs")
    status, token, values = first.get("default", "cart-py")
    print(f"status {status}, siblings: {len(values)}")

    # Merge as the application sees fit, and write with the read's context.
    items = sorted({item for value in values for item in value.split(",")})
    merged = ",".join(items)
    first.put("default", "cart-py", merged, context=token)
    status, _, values = second.get("default", "cart-py")
    print(f"status {status}, resolved: {values[0]}")


if __name__ == "__main__":
    main()
