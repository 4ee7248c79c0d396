import Logging
import NIOCore
import RESP
import StrataCluster
import StrataScript
import StrataStore

/// EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT, FCALL, FCALL_RO and FUNCTION (Redis 7).
///
/// A script or function runs as one atomic unit (`CommandExecutor.atomically`) on a disk
/// thread: its `redis.call`s run synchronously through the unit's session, checked as Redis
/// checks them (unknown, arity, not allowed from scripts, writes from read-only scripts). In a
/// cluster the call runs on the coordinator of its declared keys (CROSSSLOT if they differ);
/// EVALSHA goes there as EVAL, so the other node needs no SCRIPT LOAD. Function libraries are
/// kept in the data directory (`FunctionsFile`) and sent to every node on each change.
extension Commands {
    static let scripting: [CommandSpec] = [
        evalCommand("eval", readOnly: false, bySHA: false),
        evalCommand("evalsha", readOnly: false, bySHA: true),
        evalCommand("eval_ro", readOnly: true, bySHA: false),
        evalCommand("evalsha_ro", readOnly: true, bySHA: true),
        fcallCommand("fcall", readOnly: false),
        fcallCommand("fcall_ro", readOnly: true),

        CommandSpec("script", arity: -2, flags: [.admin, .container, .noScript]) { inv in
            let scripts = inv.server.scripts
            switch (inv.upper(1), inv.arguments.count) {
            case ("LOAD", 3):
                let body = inv.bytes(2)
                return try inv.offload { out, _ in
                    do throws(ScriptError) {
                        out.writeRESPBulk(try scripts.load(body).sha)
                    } catch {
                        throw CommandError(error.message)
                    }
                }
            case ("EXISTS", 3...):
                inv.out.writeRESPArrayHeader(inv.arguments.count - 2)
                for i in 2..<inv.arguments.count { inv.integer(reply: scripts.script(sha: inv.string(i)) == nil ? 0 : 1) }
            case ("FLUSH", 2...3):
                if inv.arguments.count == 3 && !["SYNC", "ASYNC"].contains(inv.upper(2)) {
                    throw CommandError("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
                }
                if inv.arguments.count > 3 { throw CommandError("ERR SCRIPT FLUSH only support SYNC|ASYNC option") }
                return try inv.offload { out, _ in
                    scripts.flushScripts()
                    out.writeStaticString("+OK\r\n")
                }
            case ("FLUSH", _):
                throw CommandError("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
            case ("KILL", 2):
                try kill(inv.server, function: false)
                inv.ok()
            case ("HELP", 2):
                writeHelp(scriptHelp, command: "SCRIPT", into: &inv.out)
            case ("LOAD", _), ("EXISTS", _), ("KILL", _), ("HELP", _):
                throw CommandError.arity("script|\(inv.string(1).lowercased())")
            default:
                throw CommandError("ERR unknown subcommand '\(inv.string(1))'. Try SCRIPT HELP.")
            }
            return .done
        },

        CommandSpec("function", arity: -2, flags: [.admin, .container, .noScript]) { inv in
            try functionCommand(&inv)
        },

        // STRATA.FUNCTIONS payload: a peer's whole set of libraries (FUNCTION DUMP's format),
        // installed here in place of this node's.
        CommandSpec("strata.functions", arity: 2, flags: [.admin, .noScript]) { inv in
            guard inv.session.state.withLock({ $0.isPeer }) else { throw CommandError("ERR STRATA.FUNCTIONS is for cluster peers") }
            let (payload, server) = (inv.bytes(1), inv.server)
            return try inv.offload { out, _ in
                do throws(ScriptError) {
                    try server.scripts.install(try FunctionDump.decode(payload), policy: .flush)
                } catch {
                    throw CommandError(error.message)
                }
                try FunctionsFile.save(server.scripts, directory: server.configuration.dataDirectory)
                out.writeStaticString("+OK\r\n")
            }
        },
    ]

    // MARK: EVAL

    /// KEYS and ARGV from `numkeys` at argument 2 (Redis' errors).
    static func scriptArguments(_ inv: Invocation) throws -> (keys: [[UInt8]], args: [[UInt8]]) {
        let numkeys = try inv.integer(2)
        if numkeys > inv.arguments.count - 3 { throw CommandError("ERR Number of keys can't be greater than number of args") }
        if numkeys < 0 { throw CommandError("ERR Number of keys can't be negative") }
        let keys = (3..<(3 + numkeys)).map { inv.bytes($0) }
        let args = ((3 + numkeys)..<inv.arguments.count).map { inv.bytes($0) }
        return (keys, args)
    }

    static func evalCommand(_ name: String, readOnly: Bool, bySHA: Bool) -> CommandSpec {
        CommandSpec(name, arity: -3, flags: [.admin, .write, .noScript]) { inv in
            let (keys, args) = try scriptArguments(inv)
            let scripts = inv.server.scripts
            let script: Script
            if bySHA {
                guard let found = scripts.script(sha: inv.string(1)) else {
                    throw CommandError("NOSCRIPT No matching script. Please use EVAL.")
                }
                script = found
            } else {
                do throws(ScriptError) {
                    script = try scripts.prepare(inv.bytes(1))
                } catch {
                    throw CommandError(error.message)
                }
            }
            if readOnly && script.hasShebang && !script.flags.contains(.noWrites) {
                throw CommandError("ERR Can not execute a script with write flag using *_ro command.")
            }
            // Elsewhere in a cluster, the script goes as EVAL: the coordinator may not have it cached.
            let forwarded = [ByteBuffer(string: readOnly ? "EVAL_RO" : "EVAL"), ByteBuffer(bytes: script.body)] + inv.arguments.dropFirst(2)
            if let outcome = try routeScript(inv, keys: keys, flags: script.flags, forwarded: forwarded) { return outcome }
            let readOnlyRun = readOnly || script.flags.contains(.noWrites)
            return try runAtomically(&inv, keys: keys, kind: .script, readOnly: readOnlyRun) { host, resp, preemptible in
                scripts.run(script, keys: keys, args: args, resp: resp, host: host, preemptible: preemptible)
            }
        }
    }

    static func fcallCommand(_ name: String, readOnly: Bool) -> CommandSpec {
        CommandSpec(name, arity: -3, flags: [.admin, .write, .noScript]) { inv in
            let scripts = inv.server.scripts
            let functionName = inv.string(1)
            guard let (_, function) = scripts.function(named: functionName) else { throw CommandError("ERR Function not found") }
            let (keys, args) = try scriptArguments(inv)
            if readOnly && !function.flags.contains(.noWrites) {
                throw CommandError("ERR Can not execute a script with write flag using *_ro command.")
            }
            if let outcome = try routeScript(inv, keys: keys, flags: function.flags, forwarded: inv.arguments) { return outcome }
            let readOnlyRun = readOnly || function.flags.contains(.noWrites)
            return try runAtomically(&inv, keys: keys, kind: .function, readOnly: readOnlyRun) { host, resp, preemptible in
                scripts.call(
                    function: functionName, command: name, keys: keys, args: args, resp: resp, host: host, preemptible: preemptible)
            }
        }
    }

    /// In a cluster: nil to run here, or the forwarded call's reply (or CROSSSLOT).
    static func routeScript(_ inv: Invocation, keys: [[UInt8]], flags: ScriptFlags, forwarded: [ByteBuffer]) throws -> Outcome? {
        guard let cluster = inv.server.clusterIfClustered else { return nil }
        if flags.contains(.noCluster) { throw CommandError("ERR Can not run script on cluster, 'no-cluster' flag is set.") }
        guard inv.origin != .peer, !keys.isEmpty else { return nil }
        let owners = keys.map { cluster.owners(of: $0) }
        guard Set(owners.map(\.first)).count == 1, let coordinatorOwners = owners.first else { throw CommandError.crossSlot }
        guard let coordinator = coordinatorOwners.first else { throw CommandError("ERR no live owner of this key in the cluster") }
        if coordinator == cluster.nodeID { return nil }
        let caller = Caller(session: inv.session, eventLoop: inv.eventLoop, origin: inv.origin, version: inv.version, authenticated: true)
        return .deferred(inv.server.executor.forward(forwarded, to: coordinatorOwners, caller: caller))
    }

    /// Runs a script as one atomic unit, its `redis.call`s through the unit's session.
    static func runAtomically(
        _ inv: inout Invocation, keys: [[UInt8]], kind: AtomicUnit.Kind, readOnly: Bool,
        _ body: @escaping @Sendable (ScriptHost, Int, Bool) -> ScriptReply
    ) throws -> Outcome {
        let server = inv.server
        let caller = Caller(session: inv.session, eventLoop: inv.eventLoop, origin: inv.origin, version: inv.version, authenticated: true)
        let resp = inv.version == .v3 ? 3 : 2
        let outcome = server.executor.atomically(keys: keys, kind: kind, caller: caller) { session in
            let host = ScriptHost(
                call: { arguments, version in scriptCall(arguments, version: version, readOnly: readOnly, session: session, server: server) },
                log: { level, message in
                    let levels: [Logger.Level] = [.debug, .info, .notice, .warning]
                    server.logger.log(level: levels[min(max(level, 0), 3)], "\(message)", metadata: ["source": "script"])
                })
            let reply = body(host, resp, session.onEventLoop)
            if reply.preempted { return .preempted }
            var bytes = ByteBuffer()
            bytes.writeBytes(reply.bytes)
            return .reply(Reply(bytes, isError: reply.isError))
        }
        switch outcome {
        case .now(var reply):
            // Answered here and now (no flush of its own: it goes out with the replies around it).
            if reply.isError {
                // The reply's line without its "-" and CR LF.
                throw CommandError(String(decoding: reply.bytes.readableBytesView.dropFirst().dropLast(2), as: UTF8.self))
            }
            inv.out.writeBuffer(&reply.bytes)
            return .done
        case .deferred(let future):
            return .deferred(future)
        }
    }

    /// One `redis.call` from a script: Redis' checks, then the command inside the unit.
    static func scriptCall(_ arguments: [[UInt8]], version: Int, readOnly: Bool, session: AtomicSession, server: Server) -> [UInt8] {
        func refuse(_ message: String) -> [UInt8] { Array("-\(message)\r\n".utf8) }
        let buffers = arguments.map { ByteBuffer(bytes: $0) }
        guard let spec = session.spec(buffers[0]) else { return refuse("ERR Unknown Redis command called from script") }
        guard spec.arityMatches(buffers.count) else { return refuse("ERR Wrong number of args calling Redis command from script") }
        if spec.flags.contains(.noScript) { return refuse("ERR This Redis command is not allowed from script") }
        if readOnly && spec.flags.contains(.write) { return refuse("ERR Write commands are not allowed from read-only scripts.") }
        if spec.flags.contains(.write) && session.onEventLoop { server.scripts.stopPreemption() }
        if spec.routes, let cluster = server.clusterIfClustered {
            for key in spec.keys(in: buffers) where cluster.owners(of: Array(key.readableBytesView)).first != cluster.nodeID {
                return refuse("ERR Script attempted to access a non local key in a cluster node")
            }
        }
        let reply = session.callNow(buffers, version: version == 3 ? .v3 : .v2)
        return Array(reply.bytes.readableBytesView)
    }

    /// SCRIPT KILL / FUNCTION KILL: Redis' replies for nothing running, a unit that wrote, the
    /// other kind of unit.
    static func kill(_ server: Server, function: Bool) throws {
        guard let unit = server.gate.running, unit.kind != .transaction else {
            throw CommandError("NOTBUSY No scripts in execution right now.")
        }
        if unit.wrote.load(ordering: .relaxed) {
            throw CommandError(
                "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command."
            )
        }
        if function != (unit.kind == .function) { throw CommandError(unit.busyMessage) }
        unit.killRequested.store(true, ordering: .relaxed)
        if function { server.scripts.killFunction() } else { server.scripts.killScript() }
    }
    static let scriptHelp = [
        "DEBUG (YES|SYNC|NO)", "    Set the debug mode for subsequent scripts executed.",
        "EXISTS <sha1> [<sha1> ...]", "    Return information about the existence of the scripts in the script cache.",
        "FLUSH [ASYNC|SYNC]", "    Flush the Lua scripts cache. Very dangerous on replicas.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the scripts cache.", "    * SYNC: Synchronously flush the scripts cache.",
        "KILL", "    Kill the currently executing Lua script.",
        "LOAD <script>", "    Load a script into the scripts cache without executing it.",
    ]
}

