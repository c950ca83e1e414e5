// Host side, after the guest: read vitest's JSON report from the guest and print the stage's
// verdict. A missing report, a missing test file, a failed or skipped test, or a guest that ran
// another kernel are all failures: nothing of a guest failure may look like a pass.
// usage: node test/stock-kernel/summary.mjs REPORT.json GUEST_RC EXPECTED_KERNEL GUEST_KERNEL_FILE FILE...
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const [report, guestRc, expectedKernel, kernelFile, ...expectedFiles] = process.argv.slice(2);
const problems = [];
if (guestRc !== '0') problems.push(`the guest's test command exited with status ${guestRc}`);
let passed = 0;
let failed = 0;
let skipped = 0;
const guestKernel = existsSync(kernelFile) ? readFileSync(kernelFile, 'utf8').trim() : '';
if (guestKernel !== expectedKernel) problems.push(`the guest ran kernel '${guestKernel || 'none'}', not ${expectedKernel}`);
if (!existsSync(report)) {
  problems.push('the guest wrote no vitest report');
} else {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  passed = r.numPassedTests;
  failed = r.numFailedTests;
  skipped = r.numPendingTests + r.numTodoTests;
  const root = process.cwd();
  const files = new Map(r.testResults.map((t) => [relative(root, t.name), t]));
  for (const f of expectedFiles) {
    const t = files.get(f);
    if (!t) problems.push(`${f} did not run`);
    else if (t.status !== 'passed') problems.push(`${f}: ${t.status}${t.message ? ` (${t.message.split('\n')[0]})` : ''}`);
    else if (!t.assertionResults.length) problems.push(`${f} ran no test`);
  }
  console.log('stock-kernel: per file (guest wall time):');
  for (const [f, t] of files) {
    const secs = ((t.endTime - t.startTime) / 1000).toFixed(1);
    const counts = t.assertionResults.reduce((a, x) => ((a[x.status] = (a[x.status] ?? 0) + 1), a), {});
    console.log(
      `  ${f}: ${Object.entries(counts)
        .map(([k, v]) => `${v} ${k}`)
        .join(', ')} in ${secs} s`,
    );
    for (const x of t.assertionResults) if (x.status !== 'passed') console.log(`    ${x.status}: ${x.fullName}`);
  }
  if (process.env.STOCK_KERNEL_FILTERED) skipped = 0; // a filtered run (run.sh with vitest arguments)
  if (skipped) problems.push(`${skipped} test(s) skipped: on the stock kernel nothing may be skipped`);
  for (const [f, t] of files) {
    if (t.status === 'failed' && !t.assertionResults.some((x) => x.status === 'failed'))
      problems.push(`${f} failed outside its tests: ${(t.message ?? '').split('\n')[0]}`);
  }
  if (!r.numTotalTests) problems.push('no test ran');
}
for (const p of problems) console.log(`stock-kernel: FAIL: ${p}`);
// Skipped tests count as failures here; a guest error with no failed test counts as one.
const failures = failed + skipped + (problems.length && !failed && !skipped ? 1 : 0);
if (process.env.STOCK_KERNEL_OUT) {
  mkdirSync(process.env.STOCK_KERNEL_OUT, { recursive: true });
  writeFileSync(join(process.env.STOCK_KERNEL_OUT, 'stock-kernel-result.json'), JSON.stringify({ passed, failed: failures, skipped, problems }, null, 2));
}
console.log(`${passed} passed, ${failures} failed`);
process.exit(problems.length || failures ? 1 : 0);
