import CStrataLua
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Flags a script (`#!lua flags=...`) or function (`redis.register_function{flags=...}`) declares.
public struct ScriptFlags: OptionSet, Sendable, Hashable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    public static let noWrites = ScriptFlags(rawValue: Int(SL_FLAG_NO_WRITES))
    public static let allowOOM = ScriptFlags(rawValue: Int(SL_FLAG_ALLOW_OOM))
    public static let allowStale = ScriptFlags(rawValue: Int(SL_FLAG_ALLOW_STALE))
    public static let noCluster = ScriptFlags(rawValue: Int(SL_FLAG_NO_CLUSTER))
    public static let allowCrossSlotKeys = ScriptFlags(rawValue: Int(SL_FLAG_ALLOW_CROSS_SLOT_KEYS))

    /// Redis' names, in Redis' order (FUNCTION LIST shows them so).
    public static let names: [(String, ScriptFlags)] = [
        ("no-writes", .noWrites), ("allow-oom", .allowOOM), ("allow-stale", .allowStale),
        ("no-cluster", .noCluster), ("allow-cross-slot-keys", .allowCrossSlotKeys),
    ]

    public var names: [String] { Self.names.filter { contains($0.1) }.map(\.0) }
}

/// An error with Redis' reply text (without the leading `-`).
public struct ScriptError: Error, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
}

/// A finished script or function call: the RESP reply, and whether it is an error reply.
public struct ScriptReply: Sendable {
    public var bytes: [UInt8]
    public var isError: Bool
    /// The run was stopped before any write, to run again from the start on another thread
    /// (`preemptible` runs only); `bytes` mean nothing then.
    public var preempted = false
}

/// What a running script can do outside the VM: run a command (`redis.call`) and log.
public struct ScriptHost {
    /// Runs a command (name first) with replies in RESP `resp` (2 or 3); gives the reply bytes,
    /// an error reply for a refused command.
    public var call: ([[UInt8]], Int) -> [UInt8]
    /// `redis.log`: level 0 (debug) to 3 (warning).
    public var log: (Int, String) -> Void

    public init(call: @escaping ([[UInt8]], Int) -> [UInt8], log: @escaping (Int, String) -> Void = { _, _ in }) {
        self.call = call
        self.log = log
    }
}

/// A cached EVAL script.
public struct Script: Sendable {
    public let sha: String
    public let body: [UInt8]
    public let flags: ScriptFlags
    /// Whether the body has a shebang (`#!lua`): Redis' non-compatibility mode.
    public let hasShebang: Bool
}

/// A function a library registered.
public struct ScriptFunction: Sendable, Equatable {
    public let name: String
    public let description: String?
    public let flags: ScriptFlags
}

/// A loaded function library.
public struct ScriptLibrary: Sendable {
    public let name: String
    public let code: [UInt8]
    public let functions: [ScriptFunction]
    /// Where the VM keeps its functions (the registry name).
    let slot: String
}

/// Redis 7's scripting on Lua 5.1: the EVAL script cache and VM, and the FUNCTION libraries and
/// their VM. One VM each (as Redis has), each behind its own lock: one script runs at a time.
/// The catalog (scripts, libraries, functions) has a lock of its own, held only for lookups and
/// changes, so finding a script never waits for one that runs (an event loop must not block).
/// Lock order: a VM's lock, then the catalog's. Kill requests reach a running script without
/// either.
public final class ScriptEngine: Sendable {
    /// The VMs, as opaque pointers (used only under their own lock, kill excepted).
    private let evalVM: VM
    private let functionVM: VM
    private let state = Mutex(State())
    /// Read without the VM's lock (FUNCTION STATS while a function runs).
    private let running = Mutex<RunningFunction?>(nil)

    private struct State {
        var scripts: [String: Script] = [:]
        var libraries: [String: ScriptLibrary] = [:]
        /// Function name -> library name.
        var functions: [String: String] = [:]
        var nextSlot = 0
    }

    public init() {
        evalVM = VM(functions: false)
        functionVM = VM(functions: true)
    }

    // MARK: EVAL scripts

    /// SHA-1 of `bytes` in lowercase hex (redis.sha1hex, script digests).
    public static func sha1hex(_ bytes: [UInt8]) -> String {
        var digest = [CChar](repeating: 0, count: 41)
        bytes.withUnsafeBytes { raw in sl_sha1hex(&digest, raw.baseAddress, raw.count) }
        return String(cString: digest)
    }

    /// The flags of a script's shebang and where its code starts (Redis' evalExtractShebangFlags).
    public static func shebang(of body: [UInt8]) throws(ScriptError) -> (flags: ScriptFlags, codeStart: Int, hasShebang: Bool) {
        guard body.starts(with: Array("#!".utf8)) else { return ([], 0, false) }
        guard let end = body.firstIndex(of: UInt8(ascii: "\n")) else { throw ScriptError("ERR Invalid script shebang") }
        let parts = String(decoding: body[..<end], as: UTF8.self).split(separator: " ").map(String.init)
        guard let engine = parts.first else { throw ScriptError("ERR Invalid engine in script shebang") }
        guard engine == "#!lua" else { throw ScriptError("ERR Unexpected engine in script shebang: \(engine)") }
        var flags: ScriptFlags = []
        for part in parts.dropFirst() {
            guard part.hasPrefix("flags=") else { throw ScriptError("ERR Unknown lua shebang option: \(part)") }
            for name in part.dropFirst(6).split(separator: ",", omittingEmptySubsequences: false) where !name.isEmpty {
                guard let flag = ScriptFlags.names.first(where: { $0.0 == name })?.1 else {
                    throw ScriptError("ERR Unexpected flag in script shebang: \(name)")
                }
                flags.insert(flag)
            }
        }
        return (flags, end, true)
    }

    /// Compiles and caches `body` (SCRIPT LOAD); gives the script.
    public func load(_ body: [UInt8]) throws(ScriptError) -> Script {
        let script = try prepare(body)
        try evalVM.locked { () throws(ScriptError) in try compile(script) }
        return script
    }

    /// The script for `body` with its SHA-1 and shebang flags, cached or not, without touching
    /// the VM (EVAL's handler, on an event loop); `run` compiles it if needed.
    public func prepare(_ body: [UInt8]) throws(ScriptError) -> Script {
        let sha = Self.sha1hex(body)
        if let known = state.withLock({ $0.scripts[sha] }) { return known }
        let (flags, _, hasShebang) = try Self.shebang(of: body)
        return Script(sha: sha, body: body, flags: flags, hasShebang: hasShebang)
    }

    /// Compiles `script` into the EVAL VM and caches it, unless cached. Holds the VM's lock.
    private func compile(_ script: Script) throws(ScriptError) {
        if state.withLock({ $0.scripts[script.sha] }) != nil { return }
        let start = try Self.shebang(of: script.body).codeStart
        var error = sl_buffer()
        defer { sl_buffer_free(&error) }
        let failed = script.body.withUnsafeBufferPointer { code in
            code.baseAddress!.withMemoryRebound(to: CChar.self, capacity: code.count) { base in
                sl_eval_compile(evalVM.engine, "f_\(script.sha)", base + start, code.count - start, &error)
            }
        }
        if failed != 0 { throw ScriptError("ERR \(Self.string(error))") }
        state.withLock { $0.scripts[script.sha] = script }
    }

    /// The cached script with this SHA-1 (lowercase or not), if any.
    public func script(sha: String) -> Script? {
        state.withLock { $0.scripts[sha.lowercased()] }
    }

    /// SCRIPT FLUSH: forgets every cached script.
    public func flushScripts() {
        evalVM.locked {
            state.withLock { state in
                for sha in state.scripts.keys { sl_forget(evalVM.engine, "f_\(sha)") }
                state.scripts = [:]
            }
        }
    }

    /// Runs a cached script with `keys` and `args`; `resp`: the client's protocol (2 or 3).
    ///
    /// `preemptible`: the caller is a thread that must not stay long in a script (an event
    /// loop); the run stops after about 10,000 instructions unless it wrote first
    /// (`stopPreemption`), and says so (`ScriptReply.preempted`).
    public func run(
        _ script: Script, keys: [[UInt8]], args: [[UInt8]], resp: Int, host: ScriptHost, preemptible: Bool = false
    ) -> ScriptReply {
        evalVM.locked {
            sl_engine_set_preemptible(evalVM.engine, preemptible ? 1 : 0)
            defer { sl_engine_set_preemptible(evalVM.engine, 0) }
            do throws(ScriptError) {
                try compile(script)
            } catch {
                return ScriptReply(bytes: Array("-\(error.message)\r\n".utf8), isError: true)
            }
            var reply = evalVM.run(name: script.sha, keys: keys, args: args, resp: resp, host: host) { engine, run in
                sl_eval_run(engine, "f_\(script.sha)", run)
            }
            reply.preempted = sl_engine_preempted(evalVM.engine) != 0
            return reply
        }
    }

    /// The running script or function is about to write: from now on it runs to its end
    /// where it is (called from inside the run, by its `redis.call`).
    public func stopPreemption() {
        sl_engine_set_preemptible(evalVM.engine, 0)
        sl_engine_set_preemptible(functionVM.engine, 0)
    }

    /// Stops the running EVAL script at its next hook (SCRIPT KILL).
    public func killScript() { sl_engine_kill(evalVM.engine) }

    // MARK: Functions

    /// Loads a library (FUNCTION LOAD [REPLACE]); gives its name.
    @discardableResult
    public func loadLibrary(_ code: [UInt8], replace: Bool) throws(ScriptError) -> String {
        let (engine, name) = try Self.libraryMetadata(code)
        guard engine.lowercased() == "lua" else { throw ScriptError("ERR Engine '\(engine)' not found") }
        guard Self.isValidName(name) else {
            throw ScriptError("ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long")
        }
        let result: Result<Void, ScriptError> = functionVM.locked { state.withLock { state in
            let old = state.libraries[name]
            if old != nil && !replace { return .failure(ScriptError("ERR Library '\(name)' already exists")) }
            switch compileLibrary(name: name, code: code, state: &state) {
            case .failure(let error): return .failure(error)
            case .success(let library):
                for function in library.functions {
                    if let owner = state.functions[function.name], owner != name {
                        sl_forget(functionVM.engine, library.slot)
                        return .failure(ScriptError("ERR Function \(function.name) already exists"))
                    }
                }
                if let old { remove(old, state: &state) }
                add(library, state: &state)
                return .success(())
            }
        } }
        try result.get()
        return name
    }

    /// FUNCTION DELETE.
    public func deleteLibrary(_ name: String) throws(ScriptError) {
        let found = functionVM.locked {
            state.withLock { state -> Bool in
                guard let library = state.libraries[name] else { return false }
                remove(library, state: &state)
                return true
            }
        }
        if !found { throw ScriptError("ERR Library not found") }
    }

    /// FUNCTION FLUSH.
    public func flushLibraries() {
        functionVM.locked {
            state.withLock { state in
                for library in state.libraries.values { remove(library, state: &state) }
            }
        }
    }

    /// Every library, by name.
    public var libraries: [ScriptLibrary] {
        state.withLock { Array($0.libraries.values) }.sorted { $0.name < $1.name }
    }

    /// The function named `name` and its library.
    public func function(named name: String) -> (library: ScriptLibrary, function: ScriptFunction)? {
        state.withLock { state in
            guard let libraryName = state.functions[name], let library = state.libraries[libraryName],
                let function = library.functions.first(where: { $0.name == name })
            else { return nil }
            return (library, function)
        }
    }

    /// Runs function `name` (FCALL) with `keys` and `args`; `command`: how it was called (FUNCTION
    /// STATS shows it).
    public func call(
        function name: String, command: String, keys: [[UInt8]], args: [[UInt8]], resp: Int, host: ScriptHost,
        preemptible: Bool = false
    ) -> ScriptReply {
        functionVM.locked {
            sl_engine_set_preemptible(functionVM.engine, preemptible ? 1 : 0)
            defer { sl_engine_set_preemptible(functionVM.engine, 0) }
            let slot = state.withLock { state -> String? in
                guard let libraryName = state.functions[name], let library = state.libraries[libraryName] else { return nil }
                return library.slot
            }
            guard let slot else { return ScriptReply(bytes: Array("-ERR Function not found\r\n".utf8), isError: true) }
            running.withLock { $0 = RunningFunction(name: name, command: command, since: .now) }
            defer { running.withLock { $0 = nil } }
            var reply = functionVM.run(name: name, keys: keys, args: args, resp: resp, host: host) { engine, run in
                sl_function_run(engine, slot, name, run)
            }
            reply.preempted = sl_engine_preempted(functionVM.engine) != 0
            return reply
        }
    }

    /// The function running now (FUNCTION STATS), if any.
    public var runningFunction: RunningFunction? { running.withLock { $0 } }

    /// A function being run: its name, the command that called it, and since when.
    public struct RunningFunction: Sendable {
        public let name: String
        public let command: String
        public let since: ContinuousClock.Instant
    }

    /// Stops the running function at its next hook (FUNCTION KILL).
    public func killFunction() { sl_engine_kill(functionVM.engine) }

    /// Replaces every library with `libraries` (FUNCTION RESTORE ... FLUSH, and loading at start),
    /// or adds them (`replace`: a library of the same name is replaced; else it is an error).
    /// All or nothing.
    public func install(_ codes: [[UInt8]], policy: RestorePolicy) throws(ScriptError) {
        let result: Result<Void, ScriptError> = functionVM.locked { state.withLock { state in
            var compiled: [ScriptLibrary] = []
            func discard() { for library in compiled { sl_forget(functionVM.engine, library.slot) } }
            for code in codes {
                let name: String
                do {
                    name = try Self.libraryMetadata(code).name
                } catch let error as ScriptError {
                    discard()
                    return .failure(error)
                } catch {
                    discard()
                    return .failure(ScriptError("ERR \(error)"))
                }
                switch compileLibrary(name: name, code: code, state: &state) {
                case .failure(let error):
                    discard()
                    return .failure(error)
                case .success(let library): compiled.append(library)
                }
            }
            // Collisions: among the new libraries, and with the kept ones.
            var kept = policy == .flush ? [:] : state.libraries
            if policy != .flush {
                for library in compiled where kept[library.name] != nil {
                    if policy == .append {
                        discard()
                        return .failure(ScriptError("ERR Library \(library.name) already exists"))
                    }
                    kept[library.name] = nil
                }
            }
            var owners: [String: String] = [:]
            for library in kept.values { for f in library.functions { owners[f.name] = library.name } }
            for library in compiled {
                for f in library.functions where owners[f.name] != nil {
                    discard()
                    return .failure(ScriptError("ERR Function \(f.name) already exists"))
                }
                for f in library.functions { owners[f.name] = library.name }
            }
            for library in state.libraries.values where kept[library.name] == nil { remove(library, state: &state) }
            for library in compiled { add(library, state: &state) }
            return .success(())
        } }
        try result.get()
    }

    /// How FUNCTION RESTORE treats libraries already loaded.
    public enum RestorePolicy: Sendable {
        case flush, append, replace
    }

    /// Bytes the two VMs hold.
    public var memory: Int { sl_engine_memory(evalVM.engine) + sl_engine_memory(functionVM.engine) }

    // MARK: Helpers

    /// The engine and library name of a library's shebang (Redis' functionExtractLibMetaData).
    static func libraryMetadata(_ code: [UInt8]) throws(ScriptError) -> (engine: String, name: String) {
        guard code.starts(with: Array("#!".utf8)) else { throw ScriptError("ERR Missing library metadata") }
        guard let end = code.firstIndex(of: UInt8(ascii: "\n")) else { throw ScriptError("ERR Invalid library metadata") }
        let parts = String(decoding: code[..<end], as: UTF8.self).split(separator: " ").map(String.init)
        guard let first = parts.first else { throw ScriptError("ERR Invalid library metadata") }
        var name: String?
        for part in parts.dropFirst() {
            guard part.lowercased().hasPrefix("name=") else { throw ScriptError("ERR Invalid metadata value given: \(part)") }
            if name != nil { throw ScriptError("ERR Invalid metadata value, name argument was given multiple times") }
            name = String(part.dropFirst(5))
        }
        guard let name else { throw ScriptError("ERR Library name was not given") }
        return (String(first.dropFirst(2)), name)
    }

    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 65 && $0 <= 90) || ($0 >= 48 && $0 <= 57) || $0 == 95 }
    }

    /// Compiles and runs a library's code in the function VM under a fresh slot.
    private func compileLibrary(name: String, code: [UInt8], state: inout State) -> Result<ScriptLibrary, ScriptError> {
        let start = code.firstIndex(of: UInt8(ascii: "\n")) ?? code.count
        let slot = "lib:\(state.nextSlot)"
        state.nextSlot += 1
        var error = sl_buffer()
        defer { sl_buffer_free(&error) }
        var list: UnsafeMutablePointer<sl_function>?
        var count: Int32 = 0
        let failed = code.withUnsafeBufferPointer { bytes in
            bytes.baseAddress!.withMemoryRebound(to: CChar.self, capacity: bytes.count) { base in
                sl_library_load(functionVM.engine, slot, base + start, bytes.count - start, &list, &count, &error)
            }
        }
        if failed != 0 { return .failure(ScriptError("ERR \(Self.string(error))")) }
        defer { sl_functions_free(list, count) }
        let functions = (0..<Int(count)).map { i in
            let f = list![i]
            return ScriptFunction(
                name: String(cString: f.name), description: f.description.map { String(cString: $0) },
                flags: ScriptFlags(rawValue: Int(f.flags)))
        }
        return .success(ScriptLibrary(name: name, code: code, functions: functions, slot: slot))
    }

    private func add(_ library: ScriptLibrary, state: inout State) {
        state.libraries[library.name] = library
        for function in library.functions { state.functions[function.name] = library.name }
    }

    private func remove(_ library: ScriptLibrary, state: inout State) {
        sl_forget(functionVM.engine, library.slot)
        state.libraries[library.name] = nil
        for function in library.functions where state.functions[function.name] == library.name {
            state.functions[function.name] = nil
        }
    }

    static func string(_ buffer: sl_buffer) -> String {
        guard let data = buffer.data else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: data, count: buffer.length), as: UTF8.self)
    }
}

/// One Lua VM (the C engine), freed with its owner.
private final class VM: @unchecked Sendable {
    let engine: OpaquePointer

    /// A pthread mutex: a thread waiting for a long script sleeps instead of spinning.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init(functions: Bool) {
        guard let engine = sl_engine_new(functions ? 1 : 0) else { fatalError("could not create a Lua VM") }
        self.engine = engine
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        sl_engine_free(engine)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` holding this VM's lock.
    func locked<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Runs `body` (which calls into the VM) with `run` set up from the arguments and `host`.
    func run(
        name: String, keys: [[UInt8]], args: [[UInt8]], resp: Int, host: ScriptHost,
        _ body: (OpaquePointer, UnsafeMutablePointer<sl_run>) -> Void
    ) -> ScriptReply {
        let context = Unmanaged.passRetained(HostBox(host))
        defer { context.release() }
        return withStrings(keys) { keyPointers, keyLengths in
            withStrings(args) { argPointers, argLengths in
                name.withCString { cName in
                    var run = sl_run()
                    run.call = { context, argc, argv, lengths, resp, reply in
                        let box = Unmanaged<HostBox>.fromOpaque(context!).takeUnretainedValue()
                        let arguments = (0..<Int(argc)).map { i in
                            Array(UnsafeRawBufferPointer(start: argv![i], count: lengths![i]))
                        }
                        let bytes = box.host.call(arguments, Int(resp))
                        bytes.withUnsafeBytes { sl_buffer_append(reply, $0.baseAddress, $0.count) }
                    }
                    run.log = { context, level, message, length in
                        let box = Unmanaged<HostBox>.fromOpaque(context!).takeUnretainedValue()
                        let text = String(decoding: UnsafeRawBufferPointer(start: message, count: length), as: UTF8.self)
                        box.host.log(Int(level), text)
                    }
                    run.context = context.toOpaque()
                    run.client_resp = Int32(resp)
                    run.keys = keyPointers
                    run.key_lengths = keyLengths
                    run.key_count = Int32(keys.count)
                    run.args = argPointers
                    run.arg_lengths = argLengths
                    run.arg_count = Int32(args.count)
                    run.name = cName
                    body(engine, &run)
                    defer { sl_buffer_free(&run.reply) }
                    let bytes = run.reply.data.map { Array(UnsafeRawBufferPointer(start: $0, count: run.reply.length)) } ?? []
                    return ScriptReply(bytes: bytes, isError: run.is_error != 0)
                }
            }
        }
    }
}

/// Carries the host's closures through the C context pointer.
private final class HostBox {
    let host: ScriptHost
    init(_ host: ScriptHost) { self.host = host }
}

/// Calls `body` with C pointers to each of `strings` and their lengths.
private func withStrings<R>(
    _ strings: [[UInt8]], _ body: (UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int>?) -> R
) -> R {
    let joined = strings.flatMap { $0 }
    return joined.withUnsafeBufferPointer { all in
        var pointers: [UnsafePointer<CChar>?] = []
        var lengths: [Int] = []
        var offset = 0
        let base = UnsafeRawPointer(all.baseAddress)?.assumingMemoryBound(to: CChar.self)
        for string in strings {
            pointers.append(base.map { $0 + offset } ?? UnsafePointer(bitPattern: 1))
            lengths.append(string.count)
            offset += string.count
        }
        return pointers.withUnsafeBufferPointer { p in lengths.withUnsafeBufferPointer { l in body(p.baseAddress, l.baseAddress) } }
    }
}
