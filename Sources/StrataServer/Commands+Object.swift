import NIOCore
import RESP
import StrataStore

extension Commands {
    /// OBJECT (how Redis would hold a key's value) and TOUCH (marking keys as used). OBJECT
    /// IDLETIME is always 0: the memory tier keeps its entries in recency order but records no
    /// access times. OBJECT FREQ gets Redis' error for a node without an LFU policy.
    static let object: [CommandSpec] = [
        CommandSpec("object", arity: -2, flags: .container, keys: (2, 2, 1)) { inv in
            let subcommand = inv.upper(1)
            if subcommand == "HELP" {
                guard inv.arguments.count == 2 else { throw CommandError.arity("object|help") }
                writeHelp(objectHelp, command: "OBJECT", into: &inv.out)
                return .done
            }
            guard ["ENCODING", "FREQ", "IDLETIME", "REFCOUNT"].contains(subcommand) else {
                throw CommandError("ERR unknown subcommand '\(inv.string(1))'. Try OBJECT HELP.")
            }
            guard inv.arguments.count == 3 else { throw CommandError.arity("object|\(subcommand.lowercased())") }
            let (key, store) = (inv.bytes(2), inv.store)
            return try inv.run(near: [inv.arguments[2]]) { out, version in
                guard let entry = store.entry(key) else { return out.writeRESPNull(version) }
                let encoding = StringEncoding(entry.value)
                switch subcommand {
                case "ENCODING":
                    if entry.kind == .string {
                        out.writeRESPBulk(encoding.name)
                    } else {
                        out.writeRESPBulk(try StoredValue(entry).encodingName ?? "unknown")
                    }
                case "FREQ":
                    // Strata's memory tier evicts by recency (allkeys-lru), as Redis without LFU.
                    throw CommandError(
                        "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."
                    )
                case "IDLETIME":
                    out.writeRESPInteger(0)  // not tracked (see above): as for a key just used
                default:
                    out.writeRESPInteger(entry.kind == .string && encoding.isSharedInteger ? Int(Int32.max) : 1)
                }
            }
        },

        CommandSpec("touch", arity: -2, keys: (1, -1, 1)) { inv in
            let keys = Array(inv.arguments.dropFirst())
            let store = inv.store
            return try inv.run(near: keys) { out, _ in
                // A read moves the key to the front of the memory tier's LRU order (promoting it
                // from disk), which is what TOUCH's "last access" means here.
                let touched = keys.reduce(0) { count, key in
                    count + (key.withUnsafeReadableBytes { store.touch($0) } ? 1 : 0)
                }
                out.writeRESPInteger(touched)
            }
        },
    ]

    /// Redis' internal encoding of a string value set by SET: `int` for a 64-bit integer in
    /// canonical form (no leading zeros or `+`, at most 20 characters), `embstr` up to 44 bytes,
    /// `raw` above.
    struct StringEncoding {
        let name: String
        /// Redis shares the objects of the integers 0 to 9999 (reference count INT_MAX).
        let isSharedInteger: Bool

        init(_ value: [UInt8]) {
            if value.count <= 20, let integer = Invocation.parseInteger(value) {
                name = "int"
                isSharedInteger = (0..<10_000).contains(integer)
            } else {
                name = value.count <= 44 ? "embstr" : "raw"
                isSharedInteger = false
            }
        }
    }

    static let objectHelp = [
        "ENCODING <key>",
        "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
        "FREQ <key>",
        "    Return the access frequency index of the <key>. The returned integer is",
        "    proportional to the logarithm of the recent access frequency of the key.",
        "IDLETIME <key>",
        "    Return the idle time of the <key>, that is the approximated number of",
        "    seconds elapsed since the last access to the key.",
        "REFCOUNT <key>",
        "    Return the number of references of the value associated with the specified",
        "    <key>.",
    ]

    /// A container command's HELP reply as Redis writes it: a title, the lines, and HELP's own.
    static func writeHelp(_ lines: [String], command: String, into out: inout ByteBuffer) {
        let all =
            ["\(command) <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"] + lines
            + ["HELP", "    Prints this help."]
        out.writeRESPArrayHeader(all.count)
        for line in all { out.writeRESPSimpleString(line) }
    }
}
