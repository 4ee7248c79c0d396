import Foundation
import Synchronization
import Testing

@testable import StrataScript

/// The engine with a fake command callback: a tiny in-memory GET/SET/INCR/HELLO.
final class FakeNode: @unchecked Sendable {
    var data: [String: String] = [:]
    var calls: [[String]] = []

    var host: ScriptHost {
        ScriptHost { arguments, resp in
            let args = arguments.map { String(decoding: $0, as: UTF8.self) }
            self.calls.append(args)
            switch args[0].lowercased() {
            case "set":
                self.data[args[1]] = args[2]
                return Array("+OK\r\n".utf8)
            case "get":
                guard let value = self.data[args[1]] else { return Array((resp == 3 ? "_\r\n" : "$-1\r\n").utf8) }
                return Array("$\(value.utf8.count)\r\n\(value)\r\n".utf8)
            case "incr":
                guard let n = Int(self.data[args[1]] ?? "0") else {
                    return Array("-ERR value is not an integer or out of range\r\n".utf8)
                }
                self.data[args[1]] = String(n + 1)
                return Array(":\(n + 1)\r\n".utf8)
            case "map":
                return Array((resp == 3 ? "%1\r\n+a\r\n:1\r\n" : "*2\r\n+a\r\n:1\r\n").utf8)
            case "double":
                return Array((resp == 3 ? ",3.5\r\n" : "$3\r\n3.5\r\n").utf8)
            default:
                return Array("-ERR Unknown Redis command called from script\r\n".utf8)
            }
        }
    }
}

@Suite struct ScriptEngineTests {
    let engine = ScriptEngine()

    func eval(_ body: String, keys: [String] = [], args: [String] = [], resp: Int = 2, node: FakeNode = FakeNode()) throws -> String {
        let script = try engine.load(Array(body.utf8))
        let reply = engine.run(script, keys: keys.map { Array($0.utf8) }, args: args.map { Array($0.utf8) }, resp: resp, host: node.host)
        return String(decoding: reply.bytes, as: UTF8.self)
    }

    @Test func sha1MatchesRedis() {
        #expect(ScriptEngine.sha1hex([]) == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        #expect(ScriptEngine.sha1hex(Array("return 1".utf8)) == "e0e1f9fabfc9d4800c877a703b823ac0578ff8db")
    }

    @Test func conversionsToRESP2() throws {
        #expect(try eval("return 3.99") == ":3\r\n")
        #expect(try eval("return {1, 2, 3.7, 'x', nil, 5}") == "*4\r\n:1\r\n:2\r\n:3\r\n$1\r\nx\r\n")
        #expect(try eval("return true") == ":1\r\n")
        #expect(try eval("return false") == "$-1\r\n")
        #expect(try eval("return nil") == "$-1\r\n")
        #expect(try eval("return {ok='fine'}") == "+fine\r\n")
        #expect(try eval("return {err='bad'}") == "-bad\r\n")
        #expect(try eval("return redis.error_reply('noCode')") == "-ERR noCode\r\n")
        #expect(try eval("return redis.status_reply('A\\r\\nB')") == "+A  B\r\n")
        #expect(try eval("return {double=3.14}") == "$18\r\n3.1400000000000001\r\n")
        #expect(try eval("return {map={a=1}}") == "*2\r\n$1\r\na\r\n:1\r\n")
        #expect(try eval("return KEYS[1] .. ARGV[1]", keys: ["k"], args: ["v"]) == "$2\r\nkv\r\n")
    }

    @Test func conversionsToRESP3() throws {
        #expect(try eval("return {double=3.14}", resp: 3) == ",3.1400000000000001\r\n")
        #expect(try eval("return {map={a=1}}", resp: 3) == "%1\r\n$1\r\na\r\n:1\r\n")
        #expect(try eval("return {set={a=true}}", resp: 3) == "~1\r\n$1\r\na\r\n")
        #expect(try eval("return {big_number='123'}", resp: 3) == "(123\r\n")
        #expect(try eval("return nil", resp: 3) == "_\r\n")
        #expect(try eval("redis.setresp(3); return true", resp: 3) == "#t\r\n")
        #expect(try eval("redis.setresp(3); return false", resp: 2) == ":0\r\n")
        #expect(try eval("redis.setresp(3); return redis.call('map')", resp: 3) == "%1\r\n+a\r\n:1\r\n")
        #expect(try eval("redis.setresp(3); return redis.call('double')", resp: 2) == "$3\r\n3.5\r\n")
        #expect(try eval("redis.setresp(3); return redis.call('get', 'nope') == nil") == ":1\r\n")
        #expect(try eval("return redis.call('get', 'nope') == false") == ":1\r\n")
    }

    @Test func commandsAndErrors() throws {
        let node = FakeNode()
        node.data["s"] = "abc"
        let name = ScriptEngine.sha1hex(Array("return redis.call('incr','s')".utf8))
        #expect(try eval("return redis.call('incr','s')", node: node)
            == "-ERR value is not an integer or out of range script: \(name), on @user_script:1.\r\n")
        #expect(try eval("return redis.pcall('incr','s')", node: node) == "-ERR value is not an integer or out of range\r\n")
        #expect(try eval("local ok, e = pcall(redis.call, 'incr', 's'); return e", node: node)
            == "$43\r\nERR value is not an integer or out of range\r\n")
        #expect(try eval("redis.call('set', 'n', 12.5); return redis.call('get', 'n')", node: node) == "$4\r\n12.5\r\n")
        #expect(try eval("return redis.call({})").hasPrefix("-ERR Lua redis lib command arguments must be strings or integers script: "))
        #expect(try eval("return redis.call()").hasPrefix("-ERR Please specify at least one argument for this redis lib call script: "))
        #expect(try eval("error('boom')").hasPrefix("-ERR user_script:1: boom script: "))
        #expect(try eval("error()").hasPrefix("-ERR nil script: "))
        #expect(try eval("\n\nerror({err='X boom'})").hasSuffix(", on @user_script:3.\r\n"))
        #expect(throws: ScriptError("ERR Error compiling script (new function): user_script:1: '=' expected near '1'")) {
            try engine.load(Array("retur 1".utf8))
        }
    }

    @Test func sandbox() throws {
        #expect(try eval("a = 1").hasPrefix("-ERR user_script:1: Attempt to modify a readonly table script: "))
        #expect(try eval("return a").hasPrefix("-ERR user_script:1: Script attempted to access nonexistent global variable 'a' script: "))
        #expect(try eval("string.foo = 1").hasPrefix("-ERR user_script:1: Attempt to modify a readonly table"))
        #expect(try eval("rawset(_G, 'x', 1)").hasPrefix("-ERR user_script:1: Attempt to modify a readonly table"))
        #expect(try eval("return loadfile").hasPrefix("-ERR user_script:1: Script attempted to access nonexistent global variable 'loadfile'"))
        #expect(try eval("return io").hasPrefix("-ERR user_script:1: Script attempted to access nonexistent global variable 'io'"))
        #expect(try eval("return os.time").hasPrefix("$-1"))
        #expect(try eval("return type(os.clock())") == "$6\r\nnumber\r\n")
        #expect(try eval("return string.rep('a', 3) .. math.floor(2.5) .. table.concat({'x','y'})") == "$6\r\naaa2xy\r\n")
        #expect(try eval("return redis.sha1hex('')") == "$40\r\nda39a3ee5e6b4b0d3255bfef95601890afd80709\r\n")
        #expect(try eval("return redis.REDIS_VERSION") == "$6\r\n7.0.15\r\n")
    }

    @Test func shebangFlags() throws {
        #expect(try ScriptEngine.shebang(of: Array("#!lua flags=no-writes,allow-oom\nreturn 1".utf8)).flags == [.noWrites, .allowOOM])
        #expect(throws: ScriptError("ERR Unexpected flag in script shebang: bad")) { try ScriptEngine.shebang(of: Array("#!lua flags=bad\n".utf8)) }
        #expect(throws: ScriptError("ERR Unknown lua shebang option: name=x")) { try ScriptEngine.shebang(of: Array("#!lua name=x\n".utf8)) }
        #expect(throws: ScriptError("ERR Unexpected engine in script shebang: #!js")) { try ScriptEngine.shebang(of: Array("#!js\n".utf8)) }
        #expect(throws: ScriptError("ERR Invalid script shebang")) { try ScriptEngine.shebang(of: Array("#!lua".utf8)) }
        // The shebang line keeps its line: errors name line 2.
        #expect(try eval("#!lua\nerror('x')").hasPrefix("-ERR user_script:2: x script: "))
    }

    @Test func libraries() throws {
        let code = """
            #!lua name=mylib
            redis.register_function('f1', function(keys, args) return redis.call('get', keys[1]) end)
            redis.register_function{function_name='f2', callback=function(keys, args) return args[1] end, flags={'no-writes'}, description='desc'}
            """
        #expect(try engine.loadLibrary(Array(code.utf8), replace: false) == "mylib")
        #expect(engine.function(named: "f2")?.function == ScriptFunction(name: "f2", description: "desc", flags: .noWrites))
        let node = FakeNode()
        node.data["k"] = "v"
        let reply = engine.call(function: "f1", command: "fcall", keys: [Array("k".utf8)], args: [], resp: 2, host: node.host)
        #expect(String(decoding: reply.bytes, as: UTF8.self) == "$1\r\nv\r\n")
        #expect(throws: ScriptError("ERR Library 'mylib' already exists")) { try engine.loadLibrary(Array(code.utf8), replace: false) }
        try engine.loadLibrary(Array(code.utf8), replace: true)
        #expect(throws: ScriptError("ERR Function f1 already exists")) {
            try engine.loadLibrary(Array("#!lua name=other\nredis.register_function('f1', function() end)".utf8), replace: false)
        }
        #expect(throws: ScriptError("ERR No functions registered")) { try engine.loadLibrary(Array("#!lua name=x\nreturn 1".utf8), replace: false) }
        #expect(throws: ScriptError("ERR Missing library metadata")) { try engine.loadLibrary(Array("return 1".utf8), replace: false) }
        #expect(
            throws: ScriptError(
                "ERR Error registering functions: ERR user_function:2: Script attempted to access nonexistent global variable 'call'")
        ) {
            try engine.loadLibrary(Array("#!lua name=x\nredis.call('set','a','b')".utf8), replace: false)
        }
        #expect(throws: ScriptError("ERR Error registering functions: ERR unknown flag given")) {
            try engine.loadLibrary(
                Array("#!lua name=x\nredis.register_function{function_name='g', callback=function() end, flags={'bad'}}".utf8), replace: false)
        }
        let failing = engine.call(function: "f1", command: "fcall", keys: [], args: [], resp: 2, host: node.host)
        #expect(String(decoding: failing.bytes, as: UTF8.self).hasPrefix("-ERR Lua redis lib command arguments must be strings or integers script: f1, on @user_function:2."))
        try engine.deleteLibrary("mylib")
        #expect(engine.function(named: "f1") == nil)
        #expect(throws: ScriptError("ERR Library not found")) { try engine.deleteLibrary("mylib") }
    }

    @Test func dumpRestoreRoundTrip() throws {
        #expect(FunctionDump.crc64(Array("123456789".utf8)) == 0xe9c6_d914_c4b8_d9ca)
        let code = Array("#!lua name=lib1\nredis.register_function('fa', function() return 1 end)\n".utf8)
        try engine.loadLibrary(code, replace: false)
        let payload = FunctionDump.encode(engine.libraries.map(\.code))
        engine.flushLibraries()
        #expect(engine.libraries.isEmpty)
        try engine.install(try FunctionDump.decode(payload), policy: .append)
        #expect(engine.libraries.map(\.name) == ["lib1"])
        #expect(throws: ScriptError("ERR Library lib1 already exists")) { try engine.install(try FunctionDump.decode(payload), policy: .append) }
        try engine.install(try FunctionDump.decode(payload), policy: .replace)
        var broken = payload
        broken[3] ^= 1
        #expect(throws: ScriptError("ERR DUMP payload version or checksum are wrong")) { try FunctionDump.decode(broken) }
        // Redis 7.0.15's own dump of the same library.
        let redisDump: [UInt8] = [0xf5, 0x40, 0x46] + Array("#!lua name=lib1\nredis.register_function('fa', function() return 1 end)".utf8)
        let framed = redisDump + [0x0a, 0x00]
        let crc = FunctionDump.crc64(framed)
        let decoded = try FunctionDump.decode(framed + (0..<8).map { UInt8(truncatingIfNeeded: crc >> (8 * UInt64($0))) })
        #expect(decoded.count == 1)
    }

    @Test func killStopsAnInfiniteLoop() throws {
        let script = try engine.load(Array("while true do end".utf8))
        let engine = self.engine
        let done = Atomic<Bool>(false)
        // Kill until it stops: a kill that lands before the run starts is reset by the run.
        let killer = Thread {
            while !done.load(ordering: .relaxed) {
                Thread.sleep(forTimeInterval: 0.05)
                engine.killScript()
            }
        }
        killer.start()
        let reply = engine.run(script, keys: [], args: [], resp: 2, host: FakeNode().host)
        done.store(true, ordering: .relaxed)
        #expect(String(decoding: reply.bytes, as: UTF8.self).hasPrefix("-ERR Script killed by user with SCRIPT KILL... script: "))
        #expect(reply.isError)
    }

    @Test func aPreemptibleRunStopsBeforeItsFirstWriteOnly() throws {
        let loop = try engine.load(Array("local i = 0 while i < 100000 do i = i + 1 end return i".utf8))
        let stopped = engine.run(loop, keys: [], args: [], resp: 2, host: FakeNode().host, preemptible: true)
        #expect(stopped.preempted)
        // The same script, not preemptible (the runner thread), runs to its end.
        let whole = engine.run(loop, keys: [], args: [], resp: 2, host: FakeNode().host)
        #expect(!whole.preempted)
        #expect(String(decoding: whole.bytes, as: UTF8.self) == ":100000\r\n")
        // A run that wrote first (its host stops preemption, as the server does) is not stopped.
        let writes = try engine.load(Array("redis.call('SET', 'k', 'v') local i = 0 while i < 100000 do i = i + 1 end return i".utf8))
        let node = FakeNode()
        let engine = self.engine
        var host = node.host
        let call = host.call
        host.call = { arguments, resp in
            engine.stopPreemption()
            return call(arguments, resp)
        }
        let wrote = engine.run(writes, keys: [], args: [], resp: 2, host: host, preemptible: true)
        #expect(!wrote.preempted)
        #expect(String(decoding: wrote.bytes, as: UTF8.self) == ":100000\r\n")
        #expect(node.data["k"] == "v")
        // A short script is never stopped.
        #expect(!engine.run(try engine.load(Array("return 1".utf8)), keys: [], args: [], resp: 2, host: node.host, preemptible: true).preempted)
    }
}
