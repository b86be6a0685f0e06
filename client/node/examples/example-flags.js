"use strict";
// example-flags.js — what the example apps (payments-http.js,
// payments-grpc.js) share, as client/cpp/examples/example_flags.cc does
// for C++: the flags of tests/conformance/README.md ("Flags"), the
// idemkeyd client and middleware options they give, the port file and
// stopping on SIGTERM or SIGINT.
//
//   const ex = setUpExample({ program: "payments-grpc", protocol: "gRPC", listenPort: 50052 });
//   ... new GrpcIdempotency(ex.keys, { requireKey: true, ...ex.middlewareOptions }) ...
//   ex.listening(port);                     // once bound
//   ex.onStop((done) => server.tryShutdown(done));

const fs = require("node:fs");
const path = require("node:path");
const { Client, parseDuration } = require(path.join(__dirname, "..", "dist"));

function flagTable(protocol, listenPort) {
  return {
    listen_port: { kind: "int", def: listenPort, help: `${protocol} port on 127.0.0.1 (0: any free port)` },
    port_file: { kind: "string", def: "", help: `write the bound ${protocol} port here` },
    idemkey: { kind: "string", def: "127.0.0.1:50051", help: "idemkeyd address" },
    idemkey_cacert: { kind: "string", def: "", help: "talk TLS to idemkeyd, verifying it with this PEM CA bundle" },
    idemkey_token_env: {
      kind: "string",
      def: "IDEMKEY_TOKEN",
      help: "environment variable holding the bearer token (none when unset or empty)",
    },
    fail_open: { kind: "bool", def: false, help: "run requests unprotected when idemkeyd gives no answer" },
    lease: { kind: "duration", def: 30000, help: "lease of each request's key; renewed every third of it" },
    require_tenant: {
      kind: "bool",
      def: false,
      help: "refuse a covered request without an org id (HTTP 401, gRPC UNAUTHENTICATED)",
    },
    wait_for_result: {
      kind: "duration",
      def: 0,
      help: "a retry while the first request runs waits this long for its result",
    },
    charge_delay: { kind: "duration", def: 0, help: "time each charge takes" },
  };
}

/** --name=value, and bare --name / --noname for booleans. */
function parseFlags(argv, table, usage, fail) {
  const out = {};
  for (const [name, f] of Object.entries(table)) out[name] = f.def;
  for (const arg of argv) {
    if (arg === "--help" || arg === "-h") {
      process.stdout.write(usage + "\n");
      process.exit(0);
    }
    const m = /^--?([A-Za-z0-9_]+)(?:=(.*))?$/s.exec(arg);
    if (!m) fail(`unexpected argument ${JSON.stringify(arg)}\n${usage}`);
    let name = m[1];
    let value = m[2];
    let f = table[name];
    if (!f && name.startsWith("no") && table[name.slice(2)]?.kind === "bool" && value === undefined) {
      name = name.slice(2);
      f = table[name];
      value = "false";
    }
    if (!f) fail(`unknown flag --${name}\n${usage}`);
    switch (f.kind) {
      case "bool":
        if (value === undefined || value === "true" || value === "1") out[name] = true;
        else if (value === "false" || value === "0") out[name] = false;
        else fail(`--${name}: not a boolean: ${JSON.stringify(value)}`);
        break;
      case "int":
        if (value === undefined || !/^-?\d+$/.test(value)) fail(`--${name}: not an integer: ${JSON.stringify(value)}`);
        out[name] = Number(value);
        break;
      case "duration":
        if (value === undefined) fail(`--${name} needs a value`);
        try {
          out[name] = parseDuration(value);
        } catch (e) {
          fail(`--${name}: ${e.message}`);
        }
        break;
      default:
        if (value === undefined) fail(`--${name} needs a value`);
        out[name] = value;
    }
  }
  return out;
}

/**
 * Parses process.argv (exits 0 after --help, 1 on a bad flag) and makes the
 * one idemkeyd client of the process. `protocol` and `listenPort` are the
 * app's: "HTTP", 8080; "gRPC", 50052.
 */
function setUpExample({ program, protocol, listenPort }) {
  const log = (message) => process.stderr.write(`${program}: ${message}\n`);
  const fail = (message) => {
    log(message);
    process.exit(1);
  };
  const table = flagTable(protocol, listenPort);
  const usage = [
    `usage: ${program} [--listen_port=${listenPort}] [--idemkey=HOST:PORT] [flags]`,
    "",
    ...Object.entries(table).map(([name, f]) => `  --${name}  ${f.help} (default ${JSON.stringify(f.def)})`),
  ].join("\n");
  const flags = parseFlags(process.argv.slice(2), table, usage, fail);

  let keys;
  try {
    keys = new Client({
      address: flags.idemkey,
      ...(flags.idemkey_cacert ? { rootCertFile: flags.idemkey_cacert } : {}),
      token: process.env[flags.idemkey_token_env] ?? "",
    });
  } catch (e) {
    fail(e.message);
  }

  return {
    flags,
    keys,
    log,
    fail,
    /** The middleware options the flags set; the app adds its own. */
    middlewareOptions: {
      failOpen: flags.fail_open,
      lease: flags.lease,
      heartbeatInterval: Math.max(1, Math.floor(flags.lease / 3)),
      requireTenant: flags.require_tenant,
      waitForResult: flags.wait_for_result,
    },
    /** Writes --port_file, then says where the app listens. */
    listening(port) {
      if (flags.port_file) {
        // Atomically: whoever polls the file never reads half a port.
        const tmp = `${flags.port_file}.tmp`;
        fs.writeFileSync(tmp, `${port}\n`);
        fs.renameSync(tmp, flags.port_file);
      }
      process.stderr.write(`${program} listening on 127.0.0.1:${port}, idemkeyd at ${flags.idemkey}\n`);
    },
    /**
     * On the first SIGTERM or SIGINT, `stopServer(done)` stops the server
     * after the requests in flight and calls done, which closes the client
     * and exits 0.
     */
    onStop(stopServer) {
      let stopping = false;
      const stop = () => {
        if (stopping) return;
        stopping = true;
        stopServer(() => {
          keys.close();
          process.stderr.write(`${program} stopped\n`);
          process.exit(0);
        });
      };
      process.on("SIGTERM", stop);
      process.on("SIGINT", stop);
    },
  };
}

module.exports = { setUpExample };
