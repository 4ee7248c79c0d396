// Resident memory per entry of the memory tier, against a plain Swift Dictionary holding the
// same data. Run: `cd Benchmarks && swift run -c release memory-footprint [entries]`.
//
// This is a plain executable, not an ordo-one benchmark: the benchmark framework's malloc
// interposer adds a header to every allocation, which would be counted here as our overhead.
// Each structure is measured in its own child process, so neither inherits the other's heap.
import Foundation
import StrataStore

func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    return (Int(text.split(separator: " ")[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// A 16-byte key, "key:" and twelve decimal digits, written into `bytes`.
func fillKey(_ i: Int, _ bytes: inout [UInt8]) {
    var n = i
    for position in stride(from: 15, through: 4, by: -1) {
        bytes[position] = 0x30 + UInt8(n % 10)
        n /= 10
    }
}

let arguments = CommandLine.arguments
let entries = arguments.count > 1 ? Int(arguments[1]) ?? 1_000_000 : 1_000_000
let payload = 16 + 100

if arguments.count > 2 {
    // Child: measure one structure and print bytes per entry.
    var key: [UInt8] = Array("key:000000000000".utf8)
    let value = [UInt8](repeating: 0x61, count: 100)
    let before = residentBytes()
    switch arguments[2] {
    case "tier":
        let tier = MemoryTier(budget: 8 << 30)
        for i in 0..<entries {
            fillKey(i, &key)
            tier.set(key, value)
        }
        precondition(tier.counters.items == entries)
        print((residentBytes() - before) / entries)
        withExtendedLifetime(tier) {}
    default:
        var dictionary: [[UInt8]: [UInt8]] = [:]
        for i in 0..<entries {
            fillKey(i, &key)
            var v = value
            v[0] = UInt8(truncatingIfNeeded: i)  // a buffer of its own, as a cache would hold
            dictionary[key] = v
        }
        print((residentBytes() - before) / entries)
        withExtendedLifetime(dictionary) {}
    }
    exit(0)
}

func measure(_ structure: String) -> Int {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
    process.arguments = [String(entries), structure]
    let pipe = Pipe()
    process.standardOutput = pipe
    try! process.run()
    process.waitUntilExit()
    let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    return Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
}

let tier = measure("tier")
let dictionary = measure("dictionary")
print("entries: \(entries) x (16 B key, 100 B value)")
print("| structure | resident bytes/entry | overhead beyond key+value |")
print("|---|---|---|")
print("| StrataStore MemoryTier | \(tier) | \(tier - payload) |")
print("| Swift Dictionary<[UInt8], [UInt8]> | \(dictionary) | \(dictionary - payload) |")
