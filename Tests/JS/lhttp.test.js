// Node runner for the parser, history and token cases: `node Tests/JS/lhttp.test.js` (exit 1 on any failure).
const LHTTP = require("../../public/lhttp.js");
const runParserCases = require("./parser-cases.js");
const runRecoveryCases = require("./recovery-cases.js");
const runTokenCases = require("./token-cases.js");
(async () => {
  const results = runParserCases(LHTTP).concat(await runRecoveryCases(LHTTP), await runTokenCases(LHTTP));
  for (const r of results) console.log((r.ok ? "ok   " : "FAIL ") + r.name + (r.ok ? "" : ": " + r.detail));
  const failed = results.filter((r) => !r.ok).length;
  console.log(`${results.length - failed} of ${results.length} cases passed`);
  process.exit(failed === 0 && results.length > 0 ? 0 : 1);
})();
