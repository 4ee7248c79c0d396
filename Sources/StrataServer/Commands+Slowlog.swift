import NIOCore
import RESP
import StrataStore

extension Commands {
    /// SLOWLOG's own text for a subcommand with the wrong number of arguments (Redis 7.0).
    private static func subcommandArity(_ name: String) -> CommandError {
        CommandError("ERR unknown subcommand or wrong number of arguments for '\(name)'. Try SLOWLOG HELP.")
    }

    static let slowlog: [CommandSpec] = [
        CommandSpec("slowlog", arity: -2, flags: [.admin, .container]) { inv in
            let log = inv.server.slowLog
            switch inv.upper(1) {
            case "GET":
                guard inv.arguments.count <= 3 else { throw subcommandArity("GET") }
                var count: Int? = 10
                if inv.arguments.count == 3 {
                    guard let n = Invocation.parseInteger(inv.arguments[2].readableBytesView), n >= -1 else {
                        throw CommandError("ERR count should be greater than or equal to -1")
                    }
                    count = n == -1 ? nil : n
                }
                let entries = log.newest(count)
                inv.out.writeRESPArrayHeader(entries.count)
                for entry in entries {
                    inv.out.writeRESPArrayHeader(6)
                    inv.integer(reply: entry.id)
                    inv.integer(reply: Int(entry.timestamp))
                    inv.integer(reply: Int(entry.microseconds))
                    inv.out.writeRESPArrayHeader(entry.arguments.count)
                    for argument in entry.arguments { inv.out.writeRESPBulk(argument) }
                    inv.bulk(entry.clientAddress)
                    inv.bulk(entry.clientName)
                }
            case "LEN":
                guard inv.arguments.count == 2 else { throw CommandError.arity("slowlog|len") }
                inv.integer(reply: log.count)
            case "RESET":
                guard inv.arguments.count == 2 else { throw CommandError.arity("slowlog|reset") }
                log.reset()
                inv.ok()
            case "HELP":
                guard inv.arguments.count == 2 else { throw CommandError.arity("slowlog|help") }
                writeHelp([
                    "GET [<count>]",
                    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
                    "    Entries are made of:",
                    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
                    "    client name",
                    "LEN",
                    "    Return the length of the slowlog.",
                    "RESET",
                    "    Reset the slowlog.",
                ], command: "SLOWLOG", into: &inv.out)
            default:
                throw CommandError("ERR unknown subcommand '\(inv.string(1))'. Try SLOWLOG HELP.")
            }
            return .done
        },
    ]
}
