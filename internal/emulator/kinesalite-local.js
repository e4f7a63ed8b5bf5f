// Starts kinesalite on 127.0.0.1 only. Its command line has no host option
// and listens on every interface, so this wrapper calls the module's API
// (require('kinesalite')(options) returns a Node http.Server) and binds the
// loopback address itself.
//
// Usage: node kinesalite-local.js <kinesalite package directory> <port>
'use strict'

const [moduleDir, portArg] = process.argv.slice(-2)
const port = Number(portArg)
if (!moduleDir || !Number.isInteger(port) || port < 0 || port > 65535) {
  console.error('usage: kinesalite-local.js <kinesalite package directory> <port>')
  process.exit(2)
}

const server = require(moduleDir)({}).listen(port, '127.0.0.1', () => {
  const address = server.address()
  // The same readiness line as kinesalite's own command line prints.
  console.log('Listening at http://%s:%s', address.address, address.port)
})
server.on('error', (err) => {
  console.error(err)
  process.exit(1)
})
