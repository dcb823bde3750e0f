// Reads the test reports of a CI run and prints the skipped count, then the one line CI reads last: "N passed, N failed".
// Each argument is a report: vitest's JSON report (the main run, and the real-device suites run inside
// `kvmx lab`), or a `kvmx diff --json` document (schemaVersion 2: each scenario compared with a real
// kernel counts as one test, failed when it has an unexplained difference). A missing or unreadable
// report counts as one failure: a step that should have produced it did not.
import { readFileSync } from "node:fs";

const files = process.argv.slice(2);
if (files.length === 0) files.push(".vitest/report.json");
let passed = 0;
let failed = 0;
let skipped = 0;
for (const file of files) {
  let report;
  try {
    report = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    console.log(`no test report at ${file}: ${err.message}`);
    failed += 1;
    continue;
  }
  if (Array.isArray(report.testResults)) {
    const suites = report.testResults;
    // A test file that fails to load has no failed test in it, but counts as one failure all the same.
    const brokenFiles = suites.filter(
      (s) => s.status === "failed" && !(s.assertionResults ?? []).some((a) => a.status === "failed"),
    ).length;
    passed += report.numPassedTests ?? 0;
    failed += (report.numFailedTests ?? 0) + brokenFiles;
    skipped += (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
  } else if (report.schemaVersion === 2 && Array.isArray(report.reports)) {
    for (const r of report.reports) {
      if (r.unexplained === 0) passed += 1;
      else {
        failed += 1;
        console.log(`${file}: ${r.scenario} has ${r.unexplained} unexplained difference(s) against ${r.right}`);
      }
    }
  } else {
    console.log(`${file}: neither a vitest report nor a kvmx diff --json document`);
    failed += 1;
  }
}
console.log(`${skipped} skipped (real-device tests outside the lab, and tests whose prerequisites are absent)`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
