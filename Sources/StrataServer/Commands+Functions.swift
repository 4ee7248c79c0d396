import NIOCore
import RESP
import StrataCluster
import StrataScript

/// FUNCTION: LOAD, DELETE, FLUSH, DUMP, RESTORE, LIST, STATS, KILL, HELP (Redis 7's replies).
/// A change is saved in the data directory and sent to every live node of a cluster before the
/// reply, so a library loaded through one node can be called through any.
extension Commands {
    static func functionCommand(_ inv: inout Invocation) throws -> Outcome {
        let scripts = inv.server.scripts
        let count = inv.arguments.count
        let sub = inv.upper(1)
        switch sub {
        case "LOAD" where count >= 3:
            var replace = false
            for i in 2..<(count - 1) {
                guard inv.upper(i) == "REPLACE" else { throw CommandError("ERR Unknown option given: \(inv.string(i))") }
                replace = true
            }
            let (code, replacing) = (inv.bytes(count - 1), replace)
            return changeFunctions(inv) { () throws(ScriptError) -> Reply in
                var out = ByteBuffer()
                out.writeRESPBulk(try scripts.loadLibrary(code, replace: replacing))
                return Reply(out)
            }
        case "DELETE" where count == 3:
            let name = inv.string(2)
            return changeFunctions(inv) { () throws(ScriptError) -> Reply in
                try scripts.deleteLibrary(name)
                return .ok
            }
        case "FLUSH" where count <= 3:
            if count == 3 && !["SYNC", "ASYNC"].contains(inv.upper(2)) {
                throw CommandError("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
            }
            return changeFunctions(inv) { () throws(ScriptError) -> Reply in
                scripts.flushLibraries()
                return .ok
            }
        case "DUMP" where count == 2:
            inv.bulk(FunctionDump.encode(scripts.libraries.map(\.code)))
        case "RESTORE" where count >= 3:
            var policy = ScriptEngine.RestorePolicy.append
            for i in 3..<count {
                switch inv.upper(i) {
                case "FLUSH": policy = .flush
                case "APPEND": policy = .append
                case "REPLACE": policy = .replace
                default: throw CommandError("ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.")
                }
            }
            let (payload, chosen) = (inv.bytes(2), policy)
            return changeFunctions(inv) { () throws(ScriptError) -> Reply in
                try scripts.install(try FunctionDump.decode(payload), policy: chosen)
                return .ok
            }
        case "LIST":
            var withCode = false
            var pattern: [UInt8]?
            var i = 2
            while i < count {
                if !withCode && inv.upper(i) == "WITHCODE" {
                    withCode = true
                } else if pattern == nil && inv.upper(i) == "LIBRARYNAME" {
                    guard i < count - 1 else { throw CommandError("ERR library name argument was not given") }
                    i += 1
                    pattern = inv.bytes(i)
                } else {
                    throw CommandError("ERR Unknown argument \(inv.string(i))")
                }
                i += 1
            }
            let libraries = scripts.libraries.filter { library in
                pattern.map { GlobPattern.matches($0, Array(library.name.utf8), caseInsensitive: true) } ?? true
            }
            let version = inv.version
            inv.out.writeRESPArrayHeader(libraries.count)
            for library in libraries {
                inv.out.writeRESPMapHeader(withCode ? 4 : 3, version)
                inv.bulk("library_name")
                inv.bulk(library.name)
                inv.bulk("engine")
                inv.bulk("LUA")
                inv.bulk("functions")
                inv.out.writeRESPArrayHeader(library.functions.count)
                for function in library.functions {
                    inv.out.writeRESPMapHeader(3, version)
                    inv.bulk("name")
                    inv.bulk(function.name)
                    inv.bulk("description")
                    if let description = function.description { inv.bulk(description) } else { inv.null() }
                    inv.bulk("flags")
                    let names = function.flags.names
                    inv.out.writeString(version == .v3 ? "~\(names.count)\r\n" : "*\(names.count)\r\n")
                    for name in names { inv.out.writeRESPSimpleString(name) }
                }
                if withCode {
                    inv.bulk("library_code")
                    inv.bulk(library.code)
                }
            }
        case "STATS" where count == 2:
            let version = inv.version
            inv.out.writeRESPMapHeader(2, version)
            inv.bulk("running_script")
            if let running = scripts.runningFunction {
                inv.out.writeRESPMapHeader(3, version)
                inv.bulk("name")
                inv.bulk(running.name)
                inv.bulk("command")
                inv.out.writeRESPArrayHeader(1)
                inv.bulk(running.command)
                inv.bulk("duration_ms")
                inv.integer(reply: Int((ContinuousClock.now - running.since) / .milliseconds(1)))
            } else {
                inv.null()
            }
            let libraries = scripts.libraries
            inv.bulk("engines")
            inv.out.writeRESPMapHeader(1, version)
            inv.bulk("LUA")
            inv.out.writeRESPMapHeader(2, version)
            inv.bulk("libraries_count")
            inv.integer(reply: libraries.count)
            inv.bulk("functions_count")
            inv.integer(reply: libraries.reduce(0) { $0 + $1.functions.count })
        case "KILL" where count == 2:
            try kill(inv.server, function: true)
            inv.ok()
        case "HELP" where count == 2:
            writeHelp(functionHelp, command: "FUNCTION", into: &inv.out)
        case "LOAD", "DELETE", "DUMP", "RESTORE", "STATS", "KILL", "HELP", "FLUSH":
            throw CommandError.arity("function|\(sub.lowercased())")
        default:
            throw CommandError("ERR unknown subcommand '\(inv.string(1))'. Try FUNCTION HELP.")
        }
        return .done
    }

    /// Runs a change of the libraries on a disk thread (the VM may be busy), saves them, sends
    /// them to every live node of a cluster, then replies.
    static func changeFunctions(_ inv: Invocation, _ change: @escaping @Sendable () throws(ScriptError) -> Reply) -> Outcome {
        let server = inv.server
        let loop = inv.eventLoop
        let changed = server.diskPool.runIfActive(eventLoop: loop) { () -> Reply in
            do {
                let reply = try server.gate.shared { () throws(ScriptError) -> Reply in try change() }
                try FunctionsFile.save(server.scripts, directory: server.configuration.dataDirectory)
                return reply
            } catch let error as ScriptError {
                return .error(error.message)
            } catch {
                return .error("ERR could not save the function libraries: \(error)")
            }
        }
        let origin = inv.origin
        return .deferred(
            changed.flatMap { reply in
                guard !reply.isError, origin != .peer, let cluster = server.clusterIfClustered else { return loop.makeSucceededFuture(reply) }
                return broadcastFunctions(server.scripts, cluster: cluster, eventLoop: loop).map { reply }
            })
    }

    /// Sends this node's libraries to every live peer (STRATA.FUNCTIONS); completes when each
    /// answered or failed (a node that was down gets the next change).
    static func broadcastFunctions(_ scripts: ScriptEngine, cluster: ClusterNode, eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let payload = FunctionDump.encode(scripts.libraries.map(\.code))
        let request = [ByteBuffer(string: "STRATA.FUNCTIONS"), ByteBuffer(bytes: payload)]
        let sends = cluster.cluster.peerIDs.filter { cluster.cluster.isLive($0) }.map { peer in
            cluster.cluster.send(request, to: peer, timeout: .seconds(10)).map { _ in () }.recover { _ in () }
        }
        return EventLoopFuture.andAllSucceed(sends, on: eventLoop)
    }

    static let functionHelp = [
        "LOAD [REPLACE] <FUNCTION CODE>", "    Create a new library with the given library name and code.",
        "DELETE <LIBRARY NAME>", "    Delete the given library.",
        "LIST [LIBRARYNAME PATTERN] [WITHCODE]", "    Return general information on all the libraries:",
        "    * Library name", "    * The engine used to run the Library", "    * Library description", "    * Functions list",
        "    * Library code (if WITHCODE is given)",
        "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
        "STATS", "    Return information about the current function running:", "    * Function name",
        "    * Command used to run the function", "    * Duration in MS that the function is running",
        "    If no function is running, return nil", "    In addition, returns a list of available engines.",
        "KILL", "    Kill the current running function.",
        "FLUSH [ASYNC|SYNC]", "    Delete all the libraries.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the libraries.", "    * SYNC: Synchronously flush the libraries.",
        "DUMP",
        "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
        "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
        "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
        "    control how to handle existing libraries (default APPEND):", "    * FLUSH: delete all existing libraries.",
        "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
        "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
        "      libraries with the new libraries (notice that even on this option there is a chance of failure",
        "      in case of functions name collision with another library).",
    ]
}
