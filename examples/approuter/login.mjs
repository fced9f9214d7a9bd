// Logs a user in at SAP's application router through a real browser:
// approuter → the mock UAA's login page → back, then prints what the route
// answered as JSON on stdout. TEST ONLY: the browser trusts any certificate,
// so it can reach idprop's gateway without importing its CA.
//
//   node login.mjs <approuter URL> <path> <user> <password> [logout path]
//
// Environment: CHROMIUM (default /usr/bin/chromium), IDPROP_GATEWAY (the
// proxy for *.test hosts; loopback hosts are reached directly).
import puppeteer from 'puppeteer-core';

const [base, path, user, password, logout] = process.argv.slice(2);
const gateway = process.env.IDPROP_GATEWAY;
if (!base || !path || !user || !password || !gateway) {
  console.error('usage: IDPROP_GATEWAY=… node login.mjs <approuter URL> <path> <user> <password> [logout path]');
  process.exit(2);
}
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  acceptInsecureCerts: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--no-first-run',
    `--proxy-server=${gateway}`,
    '--ignore-certificate-errors',
  ],
});
const result = { steps: [] };
try {
  const page = await browser.newPage();
  page.on('framenavigated', (f) => {
    if (f === page.mainFrame()) result.steps.push(f.url());
  });
  await page.goto(base + path, { waitUntil: 'networkidle0', timeout: 20000 });
  result.login_page = page.url();
  await page.waitForSelector('#username', { timeout: 10000 });
  await page.type('#username', user);
  await page.type('#password', password);
  await Promise.all([page.waitForNavigation({ waitUntil: 'networkidle0', timeout: 20000 }), page.click('#login')]);
  // The callback page sets its cookies by script, then navigates on.
  await page.waitForFunction(() => document.body && document.body.innerText.includes('"client_cert"'), { timeout: 20000 });
  result.final_url = page.url();
  result.answer = JSON.parse(await page.evaluate(() => document.body.innerText));
  if (logout) {
    await page.goto(base + logout, { waitUntil: 'networkidle0', timeout: 20000 });
    result.after_logout = page.url();
    await page.goto(base + path, { waitUntil: 'networkidle0', timeout: 20000 });
    result.after_logout_route = page.url();
  }
} catch (e) {
  result.error = String(e && e.stack || e);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result) + '\n');
process.exit(result.error ? 1 : 0);
