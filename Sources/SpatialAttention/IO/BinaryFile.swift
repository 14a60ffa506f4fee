#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Whole-file reads and atomic writes through POSIX calls, with every failure reported as a
/// ``FileFormatError`` naming the path.
enum BinaryFile {
    /// The bytes of the regular file at `path`.
    ///
    /// The buffer is sized by `fstat`, the real size of the file, never by anything the file
    /// declares. Directories, pipes and devices are refused before any read, so a FIFO cannot hang
    /// the reader.
    static func read(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            let code = errno
            throw FileFormatError(path: path, code == ENOENT ? .fileNotFound : .readFailed(reason: message(code)))
        }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw FileFormatError(path: path, .readFailed(reason: message(errno))) }
        guard (status.st_mode & S_IFMT) == S_IFREG else { throw FileFormatError(path: path, .notARegularFile) }
        let size = Int(status.st_size)
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        try bytes.withUnsafeMutableBytes { buffer in
            while done < size {
                let got = posixRead(fd, buffer.baseAddress! + done, size - done)
                if got < 0 {
                    if errno == EINTR { continue }
                    throw FileFormatError(path: path, .readFailed(reason: message(errno)))
                }
                if got == 0 { break }  // The file shrank while we read it.
                done += got
            }
        }
        if done < size { bytes.removeLast(size - done) }
        return bytes
    }

    /// Writes `bytes` to `path` atomically: into a new temporary file in the same folder, then
    /// `rename` over `path`. On any failure the temporary file is removed and `path` is untouched,
    /// so a failed write never leaves a partial file behind.
    static func write(_ bytes: [UInt8], to path: String) throws {
        var template = Array((path + ".tmp-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw FileFormatError(path: path, .writeFailed(reason: message(errno))) }
        let temporary = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        var closed = false
        var renamed = false
        defer {
            if !closed { close(fd) }
            if !renamed { unlink(temporary) }
        }
        // mkstemp creates the file 0600; give it the permissions an ordinary file would get.
        let mask = umask(0)
        umask(mask)
        fchmod(fd, 0o666 & ~mask)
        var done = 0
        try bytes.withUnsafeBytes { buffer in
            while done < buffer.count {
                let wrote = posixWrite(fd, buffer.baseAddress! + done, buffer.count - done)
                if wrote < 0 {
                    if errno == EINTR { continue }
                    throw FileFormatError(path: path, .writeFailed(reason: message(errno)))
                }
                done += wrote
            }
        }
        closed = true
        guard close(fd) == 0 else { throw FileFormatError(path: path, .writeFailed(reason: message(errno))) }
        guard rename(temporary, path) == 0 else {
            throw FileFormatError(path: path, .writeFailed(reason: message(errno)))
        }
        renamed = true
    }

    private static func message(_ code: Int32) -> String { String(cString: strerror(code)) }
}

#if canImport(Glibc)
@inline(__always) private func posixRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    Glibc.read(fd, buffer, count)
}
@inline(__always) private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    Glibc.write(fd, buffer, count)
}
#elseif canImport(Darwin)
@inline(__always) private func posixRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    Darwin.read(fd, buffer, count)
}
@inline(__always) private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    Darwin.write(fd, buffer, count)
}
#endif
