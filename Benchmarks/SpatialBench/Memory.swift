import Foundation

/// Peak resident memory of this process, for the memory claims of the attention benchmarks.
///
/// Linux keeps the high-water mark in `/proc/self/status` (`VmHWM`); writing `5` to
/// `/proc/self/clear_refs` resets it to the current RSS, so one process can measure the peak of each
/// case. Where that is unavailable, `getrusage`'s `ru_maxrss` (the lifetime peak) is reported instead.
enum PeakMemory {
    /// Resets the high-water mark to the current resident size; false when the kernel refused.
    @discardableResult
    static func reset() -> Bool {
        guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? handle.close() }
        do { try handle.write(contentsOf: Data("5".utf8)) } catch { return false }
        return true
    }

    /// The peak resident set size in bytes since the last ``reset()`` (or since the process started).
    static func peakBytes() -> Int {
        if let kb = statusField("VmHWM") { return kb * 1024 }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss * 1024
    }

    /// The current resident set size in bytes.
    static func residentBytes() -> Int { (statusField("VmRSS") ?? 0) * 1024 }

    private static func statusField(_ name: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(name + ":") {
            let digits = line.split(separator: " ").compactMap { Int($0) }
            return digits.first
        }
        return nil
    }
}
