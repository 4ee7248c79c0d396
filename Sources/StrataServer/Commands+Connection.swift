import NIOCore
import RESP
import StrataStore

extension Commands {
    static let connection: [CommandSpec] = [
        CommandSpec("ping", arity: -1, flags: .admin) { inv in
            guard inv.arguments.count <= 2 else { throw CommandError.arity("ping") }
            if inv.version == .v2 && inv.session.state.withLock({ $0.isSubscribed }) {
                // A subscribed RESP2 connection gets PING's answer in the shape of a message.
                inv.out.writeRESPArrayHeader(2)
                inv.bulk("pong")
                if inv.arguments.count == 2 { inv.out.writeRESPBulk(inv.arguments[1]) } else { inv.bulk("") }
            } else if inv.arguments.count == 2 {
                inv.out.writeRESPBulk(inv.arguments[1])
            } else {
                inv.out.writeStaticString("+PONG\r\n")
            }
            return .done
        },

        CommandSpec("echo", arity: 2, flags: .admin) { inv in
            inv.out.writeRESPBulk(inv.arguments[1])
            return .done
        },

        CommandSpec("auth", arity: -2, flags: [.noAuth, .admin]) { inv in
            guard inv.arguments.count <= 3 else { throw CommandError.syntax }
            let user = inv.arguments.count == 3 ? inv.string(1) : "default"
            let password = inv.bytes(inv.arguments.count - 1)
            try authenticate(user: user, password: password, server: inv.server, oneArgument: inv.arguments.count == 2)
            inv.session.state.withLock { $0.authenticated = true }
            inv.ok()
            return .done
        },

        CommandSpec("hello", arity: -1, flags: [.noAuth, .admin]) { inv in
            var version = inv.session.protocolVersion
            var i = 1
            if inv.arguments.count >= 2 {
                guard let requested = Int(inv.string(1)) else {
                    throw CommandError("ERR Protocol version is not an integer or out of range")
                }
                guard let v = RESPVersion(rawValue: requested) else { throw CommandError("NOPROTO unsupported protocol version") }
                version = v
                i = 2
            }
            var name: String? = nil
            var authenticated = inv.session.state.withLock { $0.authenticated }
            while i < inv.arguments.count {
                switch inv.upper(i) {
                case "AUTH" where i + 2 < inv.arguments.count:
                    try authenticate(user: inv.string(i + 1), password: inv.bytes(i + 2), server: inv.server, oneArgument: false)
                    authenticated = true
                    i += 3
                case "SETNAME" where i + 1 < inv.arguments.count:
                    name = try validClientName(inv.string(i + 1))
                    i += 2
                default:
                    throw CommandError("ERR Syntax error in HELLO option '\(inv.string(i))'")
                }
            }
            guard authenticated else {
                throw CommandError(
                    "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"
                )
            }
            inv.session.state.withLock { state in
                state.authenticated = true
                state.protocolVersion = version
                if let name { state.name = name }
            }
            // The reply is already in the new protocol version.
            inv.out.writeRESPMapHeader(7, version)
            inv.out.writeRESPBulk("server")
            inv.out.writeRESPBulk("redis")
            inv.out.writeRESPBulk("version")
            inv.out.writeRESPBulk(StrataVersion.redisCompatible)
            inv.out.writeRESPBulk("proto")
            inv.out.writeRESPInteger(version.rawValue)
            inv.out.writeRESPBulk("id")
            inv.out.writeRESPInteger(Int(inv.session.id))
            inv.out.writeRESPBulk("mode")
            inv.out.writeRESPBulk("standalone")
            inv.out.writeRESPBulk("role")
            inv.out.writeRESPBulk("master")
            inv.out.writeRESPBulk("modules")
            inv.out.writeRESPArrayHeader(0)
            return .done
        },

        CommandSpec("client", arity: -2, flags: [.admin, .container]) { inv in
            let sub = inv.upper(1)
            if ["GETNAME", "ID", "INFO"].contains(sub) && inv.arguments.count != 2 {
                throw CommandError.arity("client|\(sub.lowercased())")
            }
            switch sub {
            case "SETNAME":
                guard inv.arguments.count == 3 else { throw CommandError.arity("client|setname") }
                let name = try validClientName(inv.string(2))
                inv.session.state.withLock { $0.name = name }
                inv.ok()
            case "GETNAME":
                let name = inv.session.state.withLock { $0.name }
                if name.isEmpty { inv.null() } else { inv.bulk(name) }
            case "ID":
                inv.integer(reply: Int(inv.session.id))
            case "SETINFO":
                guard inv.arguments.count == 4 else { throw CommandError.arity("client|setinfo") }
                let value = inv.string(3)
                guard !value.contains(where: { $0 == " " || $0 == "\n" || $0 == "\r" }) else {
                    throw CommandError("ERR \(inv.string(2)) cannot contain spaces, newlines or special characters.")
                }
                switch inv.upper(2) {
                case "LIB-NAME": inv.session.state.withLock { $0.libraryName = value }
                case "LIB-VER": inv.session.state.withLock { $0.libraryVersion = value }
                default: throw CommandError("ERR Unrecognized option '\(inv.string(2))'")
                }
                inv.ok()
            case "LIST":
                // CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id [id ...]], as Redis 7.
                var sessions = inv.server.clients.withLock { Array($0.values) }.sorted { $0.id < $1.id }
                var i = 2
                while i < inv.arguments.count {
                    switch inv.upper(i) {
                    case "TYPE" where i + 1 < inv.arguments.count:
                        let type = inv.string(i + 1).lowercased()
                        switch type {
                        case "normal": sessions = sessions.filter { session in !session.state.withLock { $0.isPeer } }
                        case "master", "replica", "slave", "pubsub": sessions = []
                        default: throw CommandError("ERR Unknown client type '\(inv.string(i + 1))'")
                        }
                        i += 2
                    case "ID" where i + 1 < inv.arguments.count:
                        var ids = Set<UInt64>()
                        i += 1
                        while i < inv.arguments.count {
                            guard let id = UInt64(inv.string(i)), id > 0 else { throw CommandError("ERR Invalid client ID") }
                            ids.insert(id)
                            i += 1
                        }
                        sessions = sessions.filter { ids.contains($0.id) }
                    default:
                        throw CommandError.syntax
                    }
                }
                inv.bulk(sessions.map { $0.describe() + "\n" }.joined())
            case "INFO":
                inv.bulk(inv.session.describe() + "\n")
            case "NO-EVICT", "NO-TOUCH":
                // Hints about this connection's own eviction and LRU touches; Strata evicts no
                // clients, and a read's touch is its promotion, so both are accepted as hints.
                guard inv.arguments.count == 3 else { throw CommandError.arity("client|\(sub.lowercased())") }
                guard ["ON", "OFF"].contains(inv.upper(2)) else { throw CommandError.syntax }
                inv.ok()
            case "REPLY":
                guard inv.arguments.count == 3 else { throw CommandError.arity("client|reply") }
                let mode: ClientSession.ReplyMode
                switch inv.upper(2) {
                case "ON": mode = .on
                case "OFF": mode = .off
                case "SKIP": mode = .skip
                default: throw CommandError.syntax
                }
                inv.session.state.withLock { $0.replyMode = mode }
                // OFF and SKIP answer nothing (the handler drops what is written); ON answers OK.
                inv.ok()
            case "KILL":
                try killClients(&inv)
            case "PAUSE":
                guard inv.arguments.count == 3 || inv.arguments.count == 4 else { throw CommandError.arity("client|pause") }
                guard let milliseconds = Invocation.parseInteger(inv.arguments[2].readableBytesView) else {
                    throw CommandError("ERR timeout is not an integer or out of range")
                }
                guard milliseconds >= 0 else { throw CommandError("ERR timeout is negative") }
                var mode = ClientPause.Mode.all
                if inv.arguments.count == 4 {
                    switch inv.upper(3) {
                    case "ALL": mode = .all
                    case "WRITE": mode = .write
                    default: throw CommandError("ERR CLIENT PAUSE mode must be WRITE or ALL")
                    }
                }
                let now = currentTimeMilliseconds()
                let deadline = milliseconds > Int(Int64.max - now) ? Int64.max : now + Int64(milliseconds)
                inv.server.pause.pause(until: deadline, mode: mode, timerLoop: inv.eventLoop)
                inv.ok()
            case "UNPAUSE":
                guard inv.arguments.count == 2 else { throw CommandError.arity("client|unpause") }
                inv.server.pause.unpause()
                inv.ok()
            case "UNBLOCK":
                guard inv.arguments.count == 3 || inv.arguments.count == 4 else { throw CommandError.arity("client|unblock") }
                let id = try inv.integer(2)
                var asError = false
                if inv.arguments.count == 4 {
                    switch inv.upper(3) {
                    case "TIMEOUT": asError = false
                    case "ERROR": asError = true
                    default: throw CommandError("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
                    }
                }
                let unblocked = id > 0 && inv.server.blocked.unblock(session: UInt64(id), asError: asError)
                inv.integer(reply: unblocked ? 1 : 0)
            case "HELP":
                let lines = [
                    "CLIENT <subcommand> [<arg> ...]. Subcommands are:", "GETNAME", "ID", "INFO", "LIST",
                    "KILL <ip:port>", "KILL <option> <value> [<option> <value> [...]]",
                    "    ID <client-id>, ADDR <ip:port>, LADDR <ip:port>, TYPE <normal|master|replica|pubsub>,",
                    "    USER <username>, SKIPME <yes|no>, MAXAGE <seconds>",
                    "NO-EVICT <ON|OFF>", "NO-TOUCH <ON|OFF>", "PAUSE <timeout> [WRITE|ALL]", "UNPAUSE", "REPLY <ON|OFF|SKIP>",
                    "SETNAME <name>", "SETINFO <LIB-NAME|LIB-VER> <value>", "UNBLOCK <client-id> [TIMEOUT|ERROR]", "HELP",
                ]
                inv.out.writeRESPArrayHeader(lines.count)
                for line in lines { inv.out.writeRESPSimpleString(line) }
            default:
                throw CommandError("ERR unknown subcommand '\(inv.string(1))'. Try CLIENT HELP.")
            }
            return .done
        },

        CommandSpec("monitor", arity: 1, flags: [.admin, .noScript, .noMulti]) { inv in
            inv.server.monitors.add(inv.session)
            inv.ok()
            return .done
        },

        CommandSpec("select", arity: 2, flags: .admin) { inv in
            let index = try inv.integer(1)
            guard index == 0 else { throw CommandError("ERR DB index is out of range") }
            inv.ok()
            return .done
        },

        CommandSpec("quit", arity: -1, flags: [.noAuth, .admin]) { inv in
            inv.ok()
            inv.closeAfterReply = true
            return .done
        },

        CommandSpec("reset", arity: 1, flags: [.noAuth, .admin]) { inv in
            let needsAuth = inv.server.configuration.requirePass != nil
            inv.session.state.withLock { state in
                state.protocolVersion = .v2
                state.name = ""
                state.authenticated = !needsAuth
                state.transaction = nil
                state.watched = []
                state.replyMode = .on
            }
            inv.server.pubsub.removeAll(inv.session)
            inv.server.monitors.remove(inv.session)
            inv.out.writeRESPSimpleString("RESET")
            return .done
        },
    ]

    /// CLIENT KILL: the old form (one address: OK, or an error if no client has it) and the
    /// filter form (ID, ADDR, LADDR, TYPE, USER, SKIPME, MAXAGE: the number closed), as Redis 7.
    /// The calling client, when it matches, is closed after its reply.
    static func killClients(_ inv: inout Invocation) throws {
        let sessions = inv.server.clients.withLock { Array($0.values) }
        let me = inv.session.id
        if inv.arguments.count == 3 {
            let address = inv.string(2)
            guard let target = sessions.first(where: { $0.address == address }) else {
                throw CommandError("ERR No such client")
            }
            if target.id == me { inv.closeAfterReply = true } else { target.kill() }
            inv.ok()
            return
        }
        guard inv.arguments.count % 2 == 0 else { throw CommandError.syntax }
        var matches: [(ClientSession) -> Bool] = []
        var skipMe = true
        for i in stride(from: 2, to: inv.arguments.count, by: 2) {
            let value = inv.string(i + 1)
            switch inv.upper(i) {
            case "ID":
                guard let id = Int(value), id > 0 else { throw CommandError("ERR client-id should be greater than 0") }
                matches.append { $0.id == UInt64(id) }
            case "ADDR":
                matches.append { $0.address == value }
            case "LADDR":
                matches.append { $0.localAddress == value }
            case "TYPE":
                switch value.lowercased() {
                case "normal": matches.append { session in !session.state.withLock { $0.isPeer } }
                case "master", "replica", "slave", "pubsub": matches.append { _ in false }
                default: throw CommandError("ERR Unknown client type '\(value)'")
                }
            case "USER":
                guard value == "default" else { throw CommandError("ERR No such user '\(value)'") }
            case "SKIPME":
                switch value.lowercased() {
                case "yes": skipMe = true
                case "no": skipMe = false
                default: throw CommandError.syntax
                }
            case "MAXAGE":
                guard let seconds = Int64(value) else { throw CommandError.notInteger }
                let now = currentTimeMilliseconds()
                matches.append { (now - $0.createdAt) / 1000 >= seconds }
            default:
                throw CommandError.syntax
            }
        }
        var killed = 0
        for session in sessions where matches.allSatisfy({ $0(session) }) {
            if session.id == me {
                if skipMe { continue }
                inv.closeAfterReply = true
            } else {
                session.kill()
            }
            killed += 1
        }
        inv.integer(reply: killed)
    }

    /// AUTH's rules: with no password configured, the default user takes any password (as in
    /// Redis), but the one-argument form is an error; anyone but `default` is refused.
    static func authenticate(user: String, password: [UInt8], server: Server, oneArgument: Bool) throws {
        guard let required = server.configuration.requirePass else {
            if oneArgument {
                throw CommandError(
                    "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
                )
            }
            guard user == "default" else {
                throw CommandError("WRONGPASS invalid username-password pair or user is disabled.")
            }
            return
        }
        guard user == "default", constantTimeEqual(password, Array(required.utf8)) else {
            throw CommandError("WRONGPASS invalid username-password pair or user is disabled.")
        }
    }

    static func validClientName(_ name: String) throws -> String {
        guard name.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) else {
            throw CommandError("ERR Client names cannot contain spaces, newlines or special characters.")
        }
        return name
    }
}

/// Compares secrets in time independent of where they differ.
func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var difference = UInt8(a.count == b.count ? 0 : 1)
    for i in 0..<max(a.count, b.count) {
        difference |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
    }
    return difference == 0
}
