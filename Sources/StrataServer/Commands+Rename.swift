import NIOCore
import RESP
import StrataStore

extension Commands {
    /// RENAME, RENAMENX and COPY: two keys read and written atomically on their coordinator
    /// (`TieredStore.updateAll`), so in a cluster both keys must share it (CROSSSLOT otherwise).
    static let rename: [CommandSpec] = [
        renameCommand("rename", onlyIfAbsent: false),
        renameCommand("renamenx", onlyIfAbsent: true),

        CommandSpec("copy", arity: -3, flags: [.write, .oneNode], keys: (1, 2, 1)) { inv in
            var replace = false
            var i = 3
            while i < inv.arguments.count {
                switch inv.upper(i) {
                case "REPLACE":
                    replace = true
                case "DB" where i + 1 < inv.arguments.count:
                    // Strata has database 0 only: any other is out of range, as SELECT says.
                    guard try inv.integer(i + 1) == 0 else { throw CommandError("ERR DB index is out of range") }
                    i += 1
                default:
                    throw CommandError.syntax
                }
                i += 1
            }
            let (source, destination, store) = (inv.bytes(1), inv.bytes(2), inv.store)
            if source == destination { throw CommandError("ERR source and destination objects are the same") }
            let overwrite = replace
            return try inv.run(near: [inv.arguments[1], inv.arguments[2]]) { out, _ in
                out.writeRESPInteger(try store.copy(source, to: destination, replace: overwrite) ? 1 : 0)
            }
        },
    ]

    /// RENAME (replies OK) and RENAMENX (1 if renamed, 0 if the destination exists); both keep
    /// the key's expiry, and both fail with Redis' error when the source does not exist.
    static func renameCommand(_ name: String, onlyIfAbsent: Bool) -> CommandSpec {
        CommandSpec(name, arity: 3, flags: [.write, .oneNode], keys: (1, 2, 1)) { inv in
            let (source, destination, store) = (inv.bytes(1), inv.bytes(2), inv.store)
            return try inv.run(near: [inv.arguments[1], inv.arguments[2]]) { out, _ in
                guard let renamed = try store.rename(source, to: destination, onlyIfAbsent: onlyIfAbsent) else {
                    throw CommandError("ERR no such key")
                }
                if onlyIfAbsent {
                    out.writeRESPInteger(renamed ? 1 : 0)
                } else {
                    out.writeStaticString("+OK\r\n")
                }
            }
        }
    }
}
