"use strict";
// Shared test helpers: the repo layout, a real idemkeyd, the example apps,
// HTTP requests, polling with deadlines.

const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const http = require("node:http");
const net = require("node:net");
const { spawn } = require("node:child_process");

const PACKAGE_ROOT = path.resolve(__dirname, "..", "..");
const REPO_ROOT = path.resolve(PACKAGE_ROOT, "..", "..");
const IDEMKEYD = process.env.IDEMKEYD || path.join(REPO_ROOT, "build", "server", "daemon", "idemkeyd");

/** Why the integration tests cannot run (a string), or false. */
function idemkeydSkipReason() {
  try {
    fs.accessSync(IDEMKEYD, fs.constants.X_OK);
    return false;
  } catch {
    return `no idemkeyd at ${IDEMKEYD} (build it, or set IDEMKEYD)`;
  }
}

/** Polls `fn` until it returns a truthy value; throws after `ms`. */
async function waitFor(fn, ms = 10000, what = "condition") {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function tmpDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Reads a port file once it holds a full line. */
function readPort(file) {
  try {
    const s = fs.readFileSync(file, "utf8");
    if (!s.endsWith("\n")) return 0;
    return Number(s.trim());
  } catch {
    return 0;
  }
}

/** Starts a process that writes its port to --port_file; resolves {proc, port, stop}. */
async function startWithPortFile(cmd, args, portFile, name) {
  let output = "";
  const proc = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  proc.stdout.on("data", (d) => (output += d));
  proc.stderr.on("data", (d) => (output += d));
  let exited = null;
  proc.on("exit", (code, sig) => (exited = { code, sig }));
  const port = await waitFor(
    () => {
      if (exited) throw new Error(`${name} exited (${JSON.stringify(exited)}):\n${output}`);
      return readPort(portFile);
    },
    15000,
    `${name} to serve`,
  );
  const stop = (signal = "SIGTERM") =>
    new Promise((resolve) => {
      if (exited) return resolve(exited);
      proc.once("exit", (code, sig) => resolve({ code, sig }));
      proc.kill(signal);
    });
  return { proc, port, stop, output: () => output };
}

/** A real idemkeyd on a free loopback port, with its own data directory. */
async function startIdemkeyd(extraArgs = []) {
  const dir = tmpDir("idemkeyd-");
  const portFile = path.join(dir, "port");
  const d = await startWithPortFile(
    IDEMKEYD,
    ["--listen=127.0.0.1:0", `--data_dir=${path.join(dir, "data")}`, `--port_file=${portFile}`, ...extraArgs],
    portFile,
    "idemkeyd",
  );
  return {
    ...d,
    address: `127.0.0.1:${d.port}`,
    stop: async () => {
      const r = await d.stop();
      fs.rmSync(dir, { recursive: true, force: true });
      return r;
    },
  };
}

/** examples/<name>.js on a free port, talking to idemkeyd at `idemkey`. */
function startExampleApp(name, idemkey, flags = []) {
  const portFile = path.join(tmpDir(`${name}-`), "port");
  return startWithPortFile(
    process.execPath,
    [path.join(PACKAGE_ROOT, "examples", `${name}.js`), "--listen_port=0", `--port_file=${portFile}`, `--idemkey=${idemkey}`, ...flags],
    portFile,
    name,
  );
}

/** Waits until idemkeyd at `address` has a record of (tenant, key): its first request holds it. */
async function waitHeld(address, tenant, key) {
  const { Client } = require(PACKAGE_ROOT);
  const keys = new Client({ address });
  try {
    await waitFor(() => keys.lookup(tenant, key).then(() => true, () => false), 10000, "the first request to hold the key");
  } finally {
    keys.close();
  }
}

/** A loopback port nobody listens on. */
async function closedPort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  const port = s.address().port;
  await new Promise((r) => s.close(r));
  return port;
}

/** One HTTP request; resolves {status, headers, rawHeaders, body: Buffer}. */
function request(port, { method = "POST", path: p = "/", headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port, method, path: p, headers, agent: false },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }),
        );
      },
    );
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** The gRPC code `promise` settles with: OK (0) when it resolves. */
async function code(promise) {
  try {
    await promise;
  } catch (e) {
    return e.code;
  }
  return 0;
}

/** A fresh key, unique to the run. */
function newKey(tag = "k") {
  return `${tag}-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
}

module.exports = {
  code,
  PACKAGE_ROOT,
  REPO_ROOT,
  IDEMKEYD,
  idemkeydSkipReason,
  waitFor,
  tmpDir,
  readPort,
  startWithPortFile,
  startIdemkeyd,
  startExampleApp,
  waitHeld,
  closedPort,
  request,
  newKey,
};
