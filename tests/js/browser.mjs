// Browser driver for the web page test (tests/browser.rs): headless Chromium
// through playwright-core (no browser download: Debian's chromium is used).
//
//   node browser.mjs INVITE_URL SCREENSHOT_PATH CHROMIUM_PATH
//
// Talks with the Rust test by lines:
//   1. opens INVITE_URL (http://HOST:PORT/web/open?t=SECRET); if the page asks
//      for a name (#name-form), gives "Bea Buyer";
//   2. clicks the `done` button of the task "Security review", waits until its
//      row says data-status="done", marks the window (window.__mapNoReload)
//      and prints `clicked`;
//   3. reads `expect TITLE` from stdin, waits until a .task-title with that
//      text appears inside main#plan without a page reload, saves a
//      full-page screenshot to SCREENSHOT_PATH and prints `seen`.
// Any failure: prints `error: ...` on stdout (details on stderr), saves what
// the page showed to SCREENSHOT_PATH with `-error.png`, exits 1. The browser
// is always closed.

import { createRequire } from "node:module"
import { chromium } from "playwright-core"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createInterface } from "node:readline"
const require = createRequire(import.meta.url)

const BUYER_NAME = "Bea Buyer"
const CLICK_TASK = "Security review"
const STEP_MS = 20_000
const HARD_TIMEOUT_MS = 240_000

const [url, screenshot, chromiumPath] = process.argv.slice(2)

const log = msg => process.stderr.write(`browser.mjs: ${msg}\n`)
const say = line => process.stdout.write(`${line}\n`)

class Failure extends Error {}
const fail = msg => {
  throw new Failure(msg)
}

let context = null
let page = null
let userDataDir = null
const pageProblems = []
let finished = false

async function closeBrowser() {
  if (context) {
    const c = context
    context = null
    await Promise.race([c.close().catch(() => {}), new Promise(r => setTimeout(r, 10_000))])
  }
  if (userDataDir) {
    try {
      rmSync(userDataDir, { recursive: true, force: true })
    } catch {
      // best effort
    }
    userDataDir = null
  }
}

async function finish(code, line) {
  if (finished) return
  finished = true
  if (line) say(line)
  if (code !== 0 && page && screenshot) {
    const errShot = screenshot.replace(/\.png$/, "") + "-error.png"
    try {
      await page.screenshot({ path: errShot, fullPage: true, timeout: 5_000 })
      log(`the page at failure: ${errShot}`)
    } catch {
      // the page may be gone
    }
    try {
      const html = await page.content()
      log(`page URL at failure: ${page.url()}`)
      log(`page HTML at failure (first 4000 chars):\n${html.slice(0, 4000)}`)
    } catch {
      // the page may be gone
    }
  }
  if (pageProblems.length) log(`page problems:\n  ${pageProblems.join("\n  ")}`)
  await closeBrowser()
  process.exit(code)
}

const hardTimer = setTimeout(
  () => finish(1, `error: browser.mjs timed out after ${HARD_TIMEOUT_MS} ms`),
  HARD_TIMEOUT_MS,
)
hardTimer.unref()
process.on("SIGTERM", () => finish(1, "error: killed (SIGTERM)"))

// Lines from the Rust test, one at a time.
const stdinLines = []
const stdinWaiters = []
let stdinClosed = false
const rl = createInterface({ input: process.stdin })
rl.on("line", line => {
  const w = stdinWaiters.shift()
  if (w) w(line)
  else stdinLines.push(line)
})
rl.on("close", () => {
  stdinClosed = true
  for (const w of stdinWaiters.splice(0)) w(null)
})
function readLine() {
  if (stdinLines.length) return Promise.resolve(stdinLines.shift())
  if (stdinClosed) return Promise.resolve(null)
  return new Promise(r => stdinWaiters.push(r))
}

const escapeRe = s => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
const exactText = s => new RegExp(`^\\s*${escapeRe(s)}\\s*$`)

// The row of the task titled `title` inside main#plan.
function taskRow(title) {
  return page
    .locator("main#plan tr.task")
    .filter({ has: page.locator(".task-title", { hasText: exactText(title) }) })
}

async function titlesOnPage() {
  try {
    return await page.locator("main#plan .task-title").allTextContents()
  } catch {
    return []
  }
}

// The main frame's last document response (the answer to a form POST, or
// the page a redirect led to).
let lastDoc = null

// After a form submission: fails with what the server said if it refused.
async function checkSubmitted(what) {
  if (!lastDoc || lastDoc.status() < 400) return
  const req = lastDoc.request()
  const headers = await req.allHeaders().catch(() => ({}))
  const text = async sel => ((await page.locator(sel).first().textContent().catch(() => "")) ?? "").trim()
  fail(
    `${what}: ${req.method()} ${req.url()} was answered HTTP ${lastDoc.status()} ` +
      `"${await text("h1")}: ${await text("main p")}" ` +
      `(the browser sent Origin: ${headers.origin ?? "(none)"}, Sec-Fetch-Site: ${headers["sec-fetch-site"] ?? "(none)"})`,
  )
}

async function main() {
  if (!url || !screenshot || !chromiumPath) {
    fail("usage: node browser.mjs INVITE_URL SCREENSHOT_PATH CHROMIUM_PATH")
  }
  userDataDir = mkdtempSync(join(tmpdir(), "map-browser-"))
  // A fresh profile and no calls home: without these, headless Chromium as
  // root hangs trying to reach Google.
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: true,
    chromiumSandbox: false,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1280, height: 900 },
    timeout: 60_000,
  })
  context.setDefaultTimeout(STEP_MS)
  context.setDefaultNavigationTimeout(STEP_MS)
  // Counts the page's server-sent-event streams (EventSource) and whether one
  // is open: the live update needs the stream to be up before the change.
  await context.addInitScript(() => {
    const ES = window.EventSource
    if (!ES || ES.__mapCounted) return
    window.__mapEventSources = []
    class Counted extends ES {
      constructor(...args) {
        super(...args)
        window.__mapEventSources.push(this)
      }
    }
    Counted.__mapCounted = true
    window.EventSource = Counted
  })
  page = context.pages()[0] ?? (await context.newPage())
  page.on("response", r => {
    const req = r.request()
    if (req.isNavigationRequest() && req.frame() === page.mainFrame()) lastDoc = r
  })
  page.on("pageerror", e => pageProblems.push(`script error: ${e.message}`))
  page.on("console", m => {
    if (m.type() === "error" || m.type() === "warning") pageProblems.push(`console ${m.type()}: ${m.text()}`)
  })
  page.on("requestfailed", r => {
    // An EventSource torn down by a navigation is expected.
    const why = r.failure()?.errorText ?? "?"
    if (why !== "net::ERR_ABORTED") pageProblems.push(`request failed: ${r.method()} ${r.url()} (${why})`)
  })

  // 1. Open the invite link.
  log(`opening ${url}`)
  const resp = await page.goto(url, { waitUntil: "load" })
  if (!resp) fail(`opening ${url} gave no response`)
  if (resp.status() >= 400) {
    fail(`opening the invite link ended at ${page.url()} with HTTP ${resp.status()}`)
  }
  if (!/\/web\/plans\/[^/?#]+/.test(new URL(page.url()).pathname)) {
    fail(`the invite link led to ${page.url()}, not /web/plans/{planid} (contract: 303 to the plan page)`)
  }

  if ((await page.locator("#name-form").count()) > 0) {
    log("the page asks for a name")
    const form = page.locator("#name-form")
    const name = form.locator('input[name="name"]')
    if ((await name.count()) !== 1) fail('#name-form has no single <input name="name">')
    await name.fill(BUYER_NAME)
    const submit = form.locator('button[type="submit"], input[type="submit"], button:not([type])')
    if ((await submit.count()) === 0) fail("#name-form has no submit button")
    await Promise.all([page.waitForEvent("load"), submit.first().click()])
    await checkSubmitted("giving the name failed")
    if ((await page.locator("#name-form").count()) > 0) {
      fail(`after giving the name the page still shows #name-form (at ${page.url()})`)
    }
  } else {
    log("the page did not ask for a name")
  }

  try {
    await page.locator("main#plan").waitFor({ state: "attached" })
  } catch {
    fail(`no main#plan on the plan page ${page.url()}`)
  }

  // 2. Mark "Security review" done with its status form.
  const row = taskRow(CLICK_TASK)
  try {
    await row.first().waitFor({ state: "attached" })
  } catch {
    fail(
      `no tr.task whose .task-title is ${JSON.stringify(CLICK_TASK)} in main#plan; titles: ${JSON.stringify(await titlesOnPage())}`,
    )
  }
  if ((await row.count()) !== 1) fail(`${await row.count()} rows titled ${JSON.stringify(CLICK_TASK)}`)
  const before = await row.getAttribute("data-status")
  log(`"${CLICK_TASK}" is ${before}`)
  const done = row.locator('form.status-form button[name="status"][value="done"]')
  if ((await done.count()) !== 1) {
    fail(
      `the row of ${JSON.stringify(CLICK_TASK)} has ${await done.count()} <button name="status" value="done"> inside form.status-form (want 1); row HTML: ${await row.innerHTML()}`,
    )
  }
  // A status form is a normal POST answered by a redirect: wait for that
  // page to load before marking the window, or the mark would be lost.
  const loaded = page.waitForEvent("load", { timeout: STEP_MS }).then(
    () => true,
    () => false,
  )
  await done.click()
  if (await loaded) await checkSubmitted("marking the task done failed")
  else log("clicking done loaded no new page (contract: a form POST and a redirect)")
  try {
    await page
      .locator('main#plan tr.task[data-status="done"]')
      .filter({ has: page.locator(".task-title", { hasText: exactText(CLICK_TASK) }) })
      .waitFor({ state: "attached" })
  } catch {
    const now = (await row.count()) ? await row.first().getAttribute("data-status") : "(row gone)"
    fail(`after clicking done, the row of ${JSON.stringify(CLICK_TASK)} has data-status=${JSON.stringify(now)}, not "done"`)
  }
  await page.waitForLoadState("load")

  // The live update needs the page's event stream; wait (bounded) until one
  // is open so the next change cannot slip by before it connects.
  const streamOpen = await page
    .waitForFunction(() => (window.__mapEventSources || []).some(es => es.readyState === 1), null, {
      timeout: 10_000,
    })
    .then(
      () => true,
      () => false,
    )
  if (!streamOpen) log("no open EventSource on the page after 10 s")
  await page.evaluate(() => {
    window.__mapNoReload = true
  })
  say("clicked")

  // 3. Wait for the change the test makes next to show up live.
  const line = await readLine()
  if (line === null) fail("stdin closed before `expect TITLE`")
  const m = /^expect (.+)$/.exec(line.trim())
  if (!m) fail(`unexpected line on stdin: ${JSON.stringify(line)} (want \`expect TITLE\`)`)
  const title = m[1]
  try {
    await page
      .locator("main#plan .task-title", { hasText: exactText(title) })
      .first()
      .waitFor({ state: "attached", timeout: 20_000 })
  } catch {
    const sources = await page
      .evaluate(() => (window.__mapEventSources || []).map(es => `${es.url} readyState=${es.readyState}`))
      .catch(() => [])
    fail(
      `${JSON.stringify(title)} did not appear in main#plan within 20 s; titles: ${JSON.stringify(await titlesOnPage())}; ` +
        `EventSources: ${sources.length ? sources.join(", ") : "none"}`,
    )
  }
  const noReload = await page.evaluate(() => window.__mapNoReload === true)
  if (!noReload) fail(`${JSON.stringify(title)} appeared, but only after the page reloaded (window.__mapNoReload is gone)`)
  await page.screenshot({ path: screenshot, fullPage: true })

  // 4. Accessibility: axe-core's WCAG 2 A and AA rules on the plan page as
  // this read-write participant sees it. axe is injected, which the page's
  // Content-Security-Policy forbids, so CSP is bypassed for this last
  // reload only (the steps above ran under the page's own CSP).
  const cdp = await context.newCDPSession(page)
  await cdp.send("Page.setBypassCSP", { enabled: true })
  await page.reload({ waitUntil: "load" })
  await page.addScriptTag({ content: readFileSync(require.resolve("axe-core/axe.min.js"), "utf8") })
  const axeResults = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }),
  )
  const violations = axeResults.violations.map(
    v => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map(n => n.target.join(" ")).join("; ")}`,
  )
  if (violations.length) fail(`accessibility violations (axe-core): ${violations.join(" | ")}`)
  log(`axe-core: ${axeResults.passes.length} WCAG 2.1 A/AA rules passed, no violations`)
  say("seen")
}

try {
  await main()
  await finish(0)
} catch (e) {
  const msg = e instanceof Failure ? e.message : `${e?.name ?? "Error"}: ${e?.message ?? e}`
  if (!(e instanceof Failure) && e?.stack) log(e.stack)
  await finish(1, `error: ${msg.split("\n")[0]}`)
}
