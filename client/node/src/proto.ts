/**
 * Loads idemkey.v1 from the .proto files at run time.
 *
 * Where they are looked for, in order: `protoDir` when given; the package's
 * own `proto/` folder (copied in by `npm pack`, see the prepack script); the
 * repository's `proto/` two folders above the package (client/node in the
 * idemkey repository).
 */

import * as fs from "node:fs";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const PACKAGE_ROOT = path.resolve(__dirname, "..");
const KEY_PROTO = path.join("idemkey", "v1", "idemkey.proto");

/** The folder holding idemkey/v1/idemkey.proto. */
export function findProtoDir(protoDir?: string): string {
  const candidates = protoDir
    ? [protoDir]
    : [path.join(PACKAGE_ROOT, "proto"), path.join(PACKAGE_ROOT, "..", "..", "proto")];
  for (const dir of candidates) {
    if (fs.existsSync(path.join(dir, KEY_PROTO))) return dir;
  }
  throw new Error(
    `cannot find ${KEY_PROTO} in ${candidates.join(" or ")}; pass protoDir`,
  );
}

/** How messages look once loaded: see types.ts for their mapping. */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: String,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
};

const cache = new Map<string, grpc.GrpcObject>();

/** The loaded idemkey.v1 package (cached per folder). */
export function loadIdemkeyV1(protoDir?: string): grpc.GrpcObject {
  const dir = findProtoDir(protoDir);
  let pkg = cache.get(dir);
  if (pkg === undefined) {
    const def = protoLoader.loadSync(KEY_PROTO, { ...LOADER_OPTIONS, includeDirs: [dir] });
    pkg = grpc.loadPackageDefinition(def);
    cache.set(dir, pkg);
  }
  const v1 = (pkg["idemkey"] as grpc.GrpcObject)["v1"] as grpc.GrpcObject;
  return v1;
}
