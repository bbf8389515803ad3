// Drives the dashboard in Debian's headless Chromium: the page loads with the key from
// the URL, lists the deployed functions, and an invocation made through its form shows
// up in the recent list with its id; a file deployed through its form appears in the list.
// Usage: node dashboard.test.mjs URL KEY FUNCTION FILE_TO_DEPLOY
import { chromium } from "playwright-core";

const [url, key, fn, file] = process.argv.slice(2);
const fail = (message) => { console.error("dashboard test: " + message); process.exit(1); };
if (!url || !key || !fn || !file) fail("usage: node dashboard.test.mjs URL KEY FUNCTION FILE");

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (err) => errors.push(err.message));
  await page.goto(`${url}/ui#key=${encodeURIComponent(key)}`);
  // The key left the address bar and went to storage.
  if (page.url().includes("key=")) fail("the key stayed in the URL");
  await page.waitForSelector(`tr[data-function="${fn}"]`, { timeout: 15000 });
  const stored = await page.evaluate(() => localStorage.getItem("minifaas.key"));
  if (stored !== key) fail("the key was not kept in storage");

  await page.selectOption("#invoke-function", fn);
  await page.fill("#invoke-body", "from the browser");
  await page.click("#invoke-submit");
  const result = await page.waitForSelector("#invoke-result [data-invocation]", { timeout: 15000 });
  const id = await result.getAttribute("data-invocation");
  if (!id || !id.startsWith("inv_")) fail(`no invocation id in the result: ${id}`);
  const output = await page.textContent("#invoke-result pre");
  await page.waitForSelector(`#recent li[data-invocation="${id}"]`, { timeout: 15000 });
  // Its logs open on click.
  await page.click(`#recent li[data-invocation="${id}"]`);
  const logs = await page.textContent(`#recent li[data-invocation="${id}"] pre`);

  // Deploy a file through the form: its function appears in the list.
  await page.setInputFiles("#deploy-file", file);
  await page.click("#deploy-submit");
  const stem = file.split("/").pop().replace(/\.[^.]*$/, "");
  await page.waitForSelector(`tr[data-function="${stem}"]`, { timeout: 30000 });
  const deployed = await page.textContent("#deploy-result");
  if (errors.length) fail("page errors: " + errors.join("; "));
  console.log(JSON.stringify({ id, output, logs, deployed }));
} finally {
  await browser.close();
}
