// spatial-fuzz: fuzzes the .npy and safetensors readers.
//
//   spatial-fuzz mutate npy|safetensors [--count N] [--seed S]
//       Seeded structure-aware mutations of a valid corpus (Fuzz/FuzzSupport), any build.
//   spatial-fuzz corpus npy|safetensors DIR
//       Writes the seed corpus into DIR (seed-0, seed-1, …) and a libFuzzer dictionary to DIR.dict.
//   spatial-fuzz libfuzzer npy|safetensors [libFuzzer flags, e.g. -max_total_time=60 -runs=1000000]
//       Coverage-guided, only in a build linked with libFuzzer (`make fuzz`, which builds with
//       -sanitize=fuzzer and exports LLVMFuzzerRunDriver).
//
// Exits 1 when a reader breaks a promise (FuzzSupport.fuzzOne); a crash or hang shows as such.
import FuzzSupport
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
typealias RunDriver = @convention(c) (
    UnsafeMutablePointer<Int32>, UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>, FuzzCallback
) -> Int32

func printError(_ message: String) {
    var line = message + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

func usage() -> Never {
    printError("usage: spatial-fuzz mutate|libfuzzer npy|safetensors [--count N] [--seed S] [libFuzzer flags]")
    exit(64)
}

let arguments = CommandLine.arguments
guard arguments.count >= 3, let format = FuzzFormat(rawValue: arguments[2]) else { usage() }
nonisolated(unsafe) var selectedFormat = format

switch arguments[1] {
case "mutate":
    var count = 100_000, seed: UInt64 = 1
    var i = 3
    while i + 1 < arguments.count {
        switch arguments[i] {
        case "--count": count = Int(arguments[i + 1]) ?? count
        case "--seed": seed = UInt64(arguments[i + 1]) ?? seed
        default: usage()
        }
        i += 2
    }
    let start = clock()
    let summary = runMutations(format: format, count: count, seed: seed)
    let seconds = Double(clock() - start) / Double(CLOCKS_PER_SEC)
    print(summary)
    print("  \(Int(Double(summary.executions) / max(seconds, 1e-9))) executions/s, seed \(seed)")
    for violation in summary.violations { print("  VIOLATION: \(violation)") }
    exit(summary.violations.isEmpty ? 0 : 1)
case "corpus":
    guard arguments.count == 4 else { usage() }
    let folder = arguments[3]
    mkdir(folder, 0o755)
    func save(_ bytes: [UInt8], _ path: String) {
        guard let file = fopen(path, "wb") else { printError("cannot write \(path)"); exit(1) }
        _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        fclose(file)
    }
    for (i, seed) in Corpus.seeds(format).enumerated() { save(seed, "\(folder)/seed-\(i)") }
    let tokens = Mutator.tokens(format).map { token in
        "\"" + token.utf8.map { b in b == 0x22 || b == 0x5C ? "\\" + String(UnicodeScalar(b)) : String(UnicodeScalar(b)) }.joined() + "\""
    }
    save(Array((tokens.joined(separator: "\n") + "\n").utf8), folder + ".dict")
    print("wrote \(Corpus.seeds(format).count) seeds to \(folder) and \(tokens.count) tokens to \(folder).dict")
case "libfuzzer":
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "LLVMFuzzerRunDriver") else {
        printError("spatial-fuzz: this build has no libFuzzer; build it with `make fuzz`")
        exit(2)
    }
    let driver = unsafeBitCast(symbol, to: RunDriver.self)
    // libFuzzer sees the arguments after the format, with the program name first.
    var cArguments: [UnsafeMutablePointer<CChar>?] = ([arguments[0]] + arguments.dropFirst(3)).map { strdup($0) } + [nil]
    var argc = Int32(cArguments.count - 1)
    let status = cArguments.withUnsafeMutableBufferPointer { buffer -> Int32 in
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = buffer.baseAddress
        return driver(&argc, &argv) { data, size in
            let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
            do {
                _ = try fuzzOne(bytes, format: selectedFormat)
            } catch {
                printError("VIOLATION: \(error)")
                abort()
            }
            return 0
        }
    }
    exit(status)
default:
    usage()
}
