// cbor-x wraps `require("cbor-extract")` in try/catch and falls back to its
// pure-JS decoder when it throws.
throw new Error("cbor-extract is stubbed out: cbor-x uses its pure-JS decoder")
