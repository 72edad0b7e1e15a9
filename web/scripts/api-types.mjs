// Generates src/api-types.ts, the portal's types of the JSON API, from openapi.json (the
// document the server serves at /api/openapi.json, checked in; a Rust test fails when it is
// stale). `node scripts/api-types.mjs --check` fails instead of writing when src/api-types.ts
// is not what the document gives: the portal's build runs it, so the types cannot drift.

import { readFile, writeFile } from "node:fs/promises";
import openapiTS, { astToString } from "openapi-typescript";

const documentUrl = new URL("../openapi.json", import.meta.url);
const typesUrl = new URL("../src/api-types.ts", import.meta.url);

const header = `// Generated from web/openapi.json by web/scripts/api-types.mjs (openapi-typescript).
// Do not edit: run \`npm run api-types\` in web/ (docs/portal-api.md says when).

`;
const document = JSON.parse(await readFile(documentUrl, "utf8"));
const generated = header + astToString(await openapiTS(document));

if (process.argv.includes("--check")) {
  const current = await readFile(typesUrl, "utf8").catch(() => "");
  if (current !== generated) {
    console.error(
      "web/src/api-types.ts is stale: it is not what web/openapi.json gives. Run `npm run api-types` in web/ and commit it.",
    );
    process.exit(1);
  }
} else {
  await writeFile(typesUrl, generated);
}
