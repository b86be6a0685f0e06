"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { REPO_ROOT } = require("./helpers/env");
const { fingerprint, tenantNameFor, parseDuration, checkKey, checkTenantName } = require("..");

const vectors = (name) =>
  JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "common", "rules", "testdata", name), "utf8")).vectors;

test("fingerprint reproduces every vector of fingerprint_vectors.json", () => {
  const vs = vectors("fingerprint_vectors.json");
  assert.ok(vs.length >= 10);
  for (const v of vs) {
    const got = fingerprint(v.method, v.target, Buffer.from(v.body_base64, "base64"));
    assert.equal(got.length, 32);
    assert.equal(got.toString("hex"), v.fingerprint_hex, v.name);
  }
});

test("fingerprint: the worked example of docs/semantics.md", () => {
  assert.equal(
    fingerprint("POST", "/v1/charges", Buffer.from('{"amount":100}')).toString("hex"),
    "605684389a44270beeb1d3af67a75b8e200fcefa9e69dbcccfa3fbbb64bc71ec",
  );
});

test("tenantNameFor reproduces every vector of tenant_name_vectors.json", () => {
  const vs = vectors("tenant_name_vectors.json");
  assert.ok(vs.length >= 10);
  for (const v of vs) {
    assert.equal(tenantNameFor(v.org_id), v.tenant, v.name);
    // As an HTTP header delivers it: the UTF-8 bytes, latin1-decoded.
    assert.equal(tenantNameFor(Buffer.from(v.org_id, "utf8")), v.tenant, v.name);
    if (v.tenant !== "") assert.equal(checkTenantName(v.tenant), null, v.name);
  }
});

test("parseDuration takes Go's notation", () => {
  assert.equal(parseDuration("0"), 0);
  assert.equal(parseDuration("0s"), 0);
  assert.equal(parseDuration("500ms"), 500);
  assert.equal(parseDuration("2s"), 2000);
  assert.equal(parseDuration("1m30s"), 90000);
  assert.equal(parseDuration("1.5h"), 5400000);
  assert.equal(parseDuration("1500us"), 1.5);
  for (const bad of ["", "5", "s", "1x", "1s2"]) assert.throws(() => parseDuration(bad), RangeError, bad);
});

test("checkKey: 1-256 bytes of printable ASCII", () => {
  assert.equal(checkKey("a"), null);
  assert.equal(checkKey("x".repeat(256)), null);
  assert.match(checkKey(""), /key is 0 bytes/);
  assert.match(checkKey("x".repeat(257)), /key is 257 bytes; it must be 1-256 bytes/);
  assert.equal(checkKey("my key"), 'key "my key" has byte 0x20 at offset 2; it must be 1-256 bytes of printable ASCII (0x21-0x7E)');
});
