import NIOCore
import RESP
import StrataCollections
import StrataStore

extension Commands {
    /// DUMP and RESTORE, with Redis' payload format (`DumpPayload`), so values move between Redis
    /// and Strata with redis-cli, client libraries and migration tools.
    static let dump: [CommandSpec] = [
        CommandSpec("dump", arity: 2, keys: (1, 1, 1)) { inv in
            try inv.collection(write: false) { slot, out, version in
                guard let value = slot.value else { return out.writeRESPNull(version) }
                out.writeRESPBulk(DumpPayload.dump(value))
            }
        },

        CommandSpec("restore", arity: -4, flags: .write, keys: (1, 1, 1)) { inv in
            var (replace, absoluteTTL) = (false, false)
            var (idle, frequency): (Int?, Int?) = (nil, nil)
            var i = 4
            // Redis' order of checks: options, then the key, then the TTL, then the payload.
            while i < inv.arguments.count {
                let more = i + 1 < inv.arguments.count
                switch inv.upper(i) {
                case "REPLACE": replace = true
                case "ABSTTL": absoluteTTL = true
                case "IDLETIME" where more && frequency == nil:
                    let seconds = try inv.integer(i + 1)
                    guard seconds >= 0 else { throw CommandError("ERR Invalid IDLETIME value, must be >= 0") }
                    idle = seconds
                    i += 1
                case "FREQ" where more && idle == nil:
                    let count = try inv.integer(i + 1)
                    guard (0...255).contains(count) else { throw CommandError("ERR Invalid FREQ value, must be >= 0 and <= 255") }
                    frequency = count
                    i += 1
                default:
                    throw CommandError.syntax
                }
                i += 1
            }
            let ttlArgument = Result { try inv.integer(2) }
            let payload = inv.bytes(3)
            let limits = inv.collectionLimits
            let replacing = replace, absolute = absoluteTTL
            return try inv.collection(write: true) { slot, out, _ in
                if slot.value != nil && !replacing { throw CommandError("BUSYKEY Target key name already exists.") }
                let ttl = try ttlArgument.get()
                guard ttl >= 0 else { throw CommandError("ERR Invalid TTL value, must be >= 0") }
                guard DumpPayload.verify(payload) else { throw CommandError("ERR DUMP payload version or checksum are wrong") }
                guard let value = try? DumpPayload.load(payload, limits: limits) else { throw CommandError("ERR Bad data format") }
                let expiresAt = ttl == 0 ? 0 : absolute ? Int64(ttl) : currentTimeMilliseconds() + Int64(ttl)
                if expiresAt != 0 && expiresAt <= currentTimeMilliseconds() {
                    slot = CollectionSlot(value: nil, expiresAt: 0)  // already expired: the old key goes, nothing is added
                } else {
                    slot = CollectionSlot(value: value, expiresAt: expiresAt)
                }
                out.writeStaticString("+OK\r\n")
            }
        },
    ]
}
