// A JS automerge-repo peer for the interop tests (tests/interop_js.rs).
//
//   node peer.mjs edit   WS_URL TOKEN DOC_URL TASK_ID STATUS
//       open a plan, set one task's status, wait until the relay has it
//   node peer.mjs wait   WS_URL TOKEN DOC_URL TASK_ID STATUS
//       open a plan and wait until a task has that status (CLI -> JS)
//   node peer.mjs create WS_URL TOKEN TITLE TASK_TITLE
//       create a schema-1 plan with one task, wait until the relay has it,
//       then ask the relay for an invite (POST /v1/invites)
//
// Prints one JSON object on stdout. Every wait is bounded; exits non-zero
// with a message on stderr on failure.

import { WebSocket } from "ws"
import { Repo } from "@automerge/automerge-repo"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"
import * as A from "@automerge/automerge"

// Node 20 has no global WebSocket; the adapter uses the global one.
globalThis.WebSocket = WebSocket

const TIMEOUT_MS = 30_000

function fail(msg) {
  console.error(`peer.mjs: ${msg}`)
  process.exit(1)
}

const hardTimer = setTimeout(() => fail(`timed out after ${TIMEOUT_MS} ms`), TIMEOUT_MS + 5_000)
hardTimer.unref()

function sleep(ms) {
  return new Promise(r => setTimeout(r, ms))
}

async function until(what, f, ms = TIMEOUT_MS) {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await f()
    if (v) return v
    if (Date.now() > deadline) fail(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

function connect(wsUrl, token) {
  const url = `${wsUrl}/?token=${encodeURIComponent(token)}`
  return new Repo({ network: [new WebSocketClientAdapter(url, 500)] })
}

// Plain strings or Text: automerge-js 3 reads both as JS strings.
const str = v => (v === undefined || v === null ? v : String(v))

function heads(doc) {
  return [...A.getHeads(doc)].sort()
}

// Waits until the relay holds every change we have: a second, independent
// repo (fresh connection, no storage) fetches the document until its heads
// include ours. This does not rely on the relay's storageId or sync info.
async function waitRelayHas(wsUrl, token, docUrl, wanted) {
  const want = [...wanted].sort().join(",")
  await until(`the relay to hold heads ${want}`, async () => {
    const probe = connect(wsUrl, token)
    try {
      const h = await Promise.race([
        probe.find(docUrl).then(async handle => {
          // find resolves on the first data; give it a moment to catch up.
          for (let i = 0; i < 20; i++) {
            const d = handle.doc()
            if (d && heads(d).join(",") === want) return true
            await sleep(50)
          }
          return false
        }),
        sleep(3_000).then(() => false),
      ])
      return h
    } catch (e) {
      return false
    } finally {
      await probe.shutdown().catch(() => {})
    }
  })
}

async function openPlan(repo, docUrl) {
  const handle = await Promise.race([
    repo.find(docUrl),
    sleep(TIMEOUT_MS).then(() => fail(`repo.find(${docUrl}) timed out`)),
  ])
  return handle
}

async function main() {
  const [mode, wsUrl, token, ...rest] = process.argv.slice(2)
  if (!mode || !wsUrl || !token) fail("usage: peer.mjs MODE WS_URL TOKEN ...")

  if (mode === "edit" || mode === "wait") {
    const [docUrl, taskId, status] = rest
    const repo = connect(wsUrl, token)
    const handle = await openPlan(repo, docUrl)
    // repo.find resolves on the first sync message with data, which may
    // not be everything yet: wait for the task itself.
    await until(`task ${taskId} in ${docUrl}`, () => handle.doc()?.tasks?.[taskId])
    if (mode === "edit") {
      handle.change(d => {
        d.tasks[taskId].status = status
      }, { message: `task ${status} (from JS)`, time: Math.floor(Date.now() / 1000) })
      const h = heads(handle.doc())
      await waitRelayHas(wsUrl, token, docUrl, h)
      console.log(JSON.stringify({ heads: h, title: str(handle.doc().tasks[taskId].title) }))
    } else {
      await until(`task ${taskId} to be ${status}`, () => str(handle.doc()?.tasks?.[taskId]?.status) === status)
      const d = handle.doc()
      console.log(JSON.stringify({ heads: heads(d), status: str(d.tasks[taskId].status) }))
    }
    await repo.shutdown()
    return
  }

  if (mode === "create") {
    const [title, taskTitle] = rest
    const repo = connect(wsUrl, token)
    const now = Date.now()
    const taskId = "jsjsjsjstask"
    // Written the way a JS app would: plain numbers (automerge-js stores
    // integers as int, others as f64) and plain strings (stored as Text).
    const handle = repo.create()
    handle.change(d => {
      d.schema = 1
      d.header = {
        title,
        objective: "Created by a JS automerge-repo client",
        success_criteria: "The CLI reads it",
        go_live: "2027-03-31",
        created_at: now,
      }
      d.people = {}
      d.milestones = {}
      d.tasks = {
        [taskId]: {
          title: taskTitle,
          description: "",
          status: "todo",
          kind: "task",
          priority: "medium",
          order: 1,
          created_at: now,
          deps: {},
        },
      }
      d.risks = {}
      d.comments = {}
    }, { message: "plan created (from JS)", time: Math.floor(now / 1000) })
    const h = heads(handle.doc())
    await waitRelayHas(wsUrl, token, handle.url, h)
    const httpUrl = wsUrl.replace(/^ws/, "http")
    const res = await fetch(`${httpUrl}/v1/invites`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ plan: handle.documentId, access: "rw", side: "buyer", expires_secs: 3600 }),
    })
    const body = await res.text()
    if (!res.ok) fail(`POST /v1/invites: ${res.status} ${body}`)
    const { invite } = JSON.parse(body)
    console.log(JSON.stringify({ url: handle.url, id: handle.documentId, taskId, heads: h, invite }))
    await repo.shutdown()
    return
  }

  fail(`unknown mode ${mode}`)
}

main().then(
  () => process.exit(0),
  e => fail(e?.stack ?? String(e)),
)
