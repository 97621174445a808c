// The JS automerge-repo sync server, assembled the way
// automerge/automerge-repo-sync-server (src/server.js) assembles it: express
// for HTTP, a `ws` WebSocketServer in noServer mode fed by the HTTP server's
// `upgrade` event, NodeWSServerAdapter, NodeFSStorageAdapter and a Repo that
// only shares documents a peer asks for by id (sharePolicy: false).
//
// Differences from upstream, for benchmarking only: it listens on 127.0.0.1
// (PORT from the first argument or $PORT; 0 picks a free port), prints
// `js-sync-server listening on ws://127.0.0.1:PORT` once bound, and serves no
// static files.
//
//   DATA_DIR=/tmp/x node server.js 0
import fs from "fs"
import os from "os"
import express from "express"
import { WebSocketServer } from "ws"
import { Repo } from "@automerge/automerge-repo"
import { NodeWSServerAdapter } from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"

const dir = process.env.DATA_DIR !== undefined ? process.env.DATA_DIR : ".amrg"
if (!fs.existsSync(dir)) {
  fs.mkdirSync(dir, { recursive: true })
}

const portArg = process.argv[2] ?? process.env.PORT ?? "3030"
const PORT = parseInt(portArg, 10)
if (Number.isNaN(PORT)) {
  console.error(`bad port: ${portArg}`)
  process.exit(2)
}

const socket = new WebSocketServer({ noServer: true })
const app = express()

const repo = new Repo({
  network: [new NodeWSServerAdapter(socket)],
  storage: new NodeFSStorageAdapter(dir),
  peerId: `storage-server-${os.hostname()}`,
  // A server does not share generously: it only syncs documents a peer
  // already knows about and asks for by id.
  sharePolicy: async () => false,
})

app.get("/", (req, res) => {
  res.send(`👍 @automerge/automerge-repo-sync-server is running`)
})

const server = app.listen(PORT, "127.0.0.1", () => {
  const { port } = server.address()
  process.stdout.write(`js-sync-server listening on ws://127.0.0.1:${port}\n`)
})

server.on("upgrade", (request, sock, head) => {
  socket.handleUpgrade(request, sock, head, (ws) => {
    socket.emit("connection", ws, request)
  })
})

const stop = () => {
  socket.close()
  server.close()
  repo.shutdown?.().catch(() => {})
  setTimeout(() => process.exit(0), 200).unref()
}
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
