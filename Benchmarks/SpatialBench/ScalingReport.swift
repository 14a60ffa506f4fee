import Foundation

/// The scaling table, fits and files of `spatial-bench scaling`.
struct ScalingReport {
    let points: [ScalingPoint]
    let modules: [ScalingModule]
    let sides: [Int]
    let attentionMaxSide: Int
    let channels: Int
    let threads: Int

    /// Sides from which the slope is fitted (small images are dominated by fixed costs).
    static let fitFromSide = 28

    /// `log t = intercept + slope·log N`, least squares over the module's points with `s ≥ 28`.
    func fit(_ module: ScalingModule) -> (slope: Double, intercept: Double, sides: [Int])? {
        let used = points.filter { $0.module == module && $0.side >= ScalingReport.fitFromSide }
        guard used.count >= 2 else { return nil }
        let xs = used.map { log(Double($0.n)) }, ys = used.map { log($0.seconds) }
        let mx = xs.reduce(0, +) / Double(xs.count), my = ys.reduce(0, +) / Double(ys.count)
        var sxy = 0.0, sxx = 0.0
        for (x, y) in zip(xs, ys) { sxy += (x - mx) * (y - my); sxx += (x - mx) * (x - mx) }
        let slope = sxy / sxx
        return (slope, my - slope * mx, used.map(\.side))
    }

    /// The `N` where full attention becomes 10× slower than GSA content: interpolated in log space
    /// between the measured sides that bracket the ratio 10, or extrapolated from the two fits.
    func crossover() -> (n: Double, method: String)? {
        let att = Dictionary(uniqueKeysWithValues: points.filter { $0.module == .attention }.map { ($0.n, $0.seconds) })
        let gsa = Dictionary(uniqueKeysWithValues: points.filter { $0.module == .gsaContent }.map { ($0.n, $0.seconds) })
        let common = att.keys.filter { gsa[$0] != nil }.sorted()
        let ratios = common.map { (n: Double($0), r: att[$0]! / gsa[$0]!) }
        for (a, b) in zip(ratios, ratios.dropFirst()) where a.r < 10 && b.r >= 10 {
            let t = (log(10) - log(a.r)) / (log(b.r) - log(a.r))
            return (exp(log(a.n) + t * (log(b.n) - log(a.n))), "interpolated between N = \(Int(a.n)) and \(Int(b.n))")
        }
        if let first = ratios.first, first.r >= 10 {
            return (first.n, "ratio already \(fmt(first.r)) at the smallest N = \(Int(first.n)): crossover at or below it")
        }
        guard let fa = fit(.attention), let fg = fit(.gsaContent), fa.slope > fg.slope else { return nil }
        let logN = (log(10) - (fa.intercept - fg.intercept)) / (fa.slope - fg.slope)
        return (exp(logN), "extrapolated from the fitted slopes")
    }

    /// The full-attention time the fit predicts at side `s`.
    func attentionEstimate(side s: Int) -> Double? {
        guard let f = fit(.attention) else { return nil }
        return exp(f.intercept + f.slope * log(Double(s * s)))
    }

    func table() -> String {
        var t = TextTable(["module", "s", "N", "median ms", "GFLOP/s", "peak MB", "samples"])
        for m in modules {
            for p in points.filter({ $0.module == m }) {
                t.append([m.rawValue, "\(p.side)", "\(p.n)", fmt(p.seconds * 1e3, 3),
                          p.flops > 0 ? fmt(p.flops / p.seconds / 1e9) : "–",
                          fmt(Double(p.peakBytes) / 1e6, 0), "\(p.samples)"])
            }
            if m == .attention {
                for s in sides.sorted() where s > attentionMaxSide {
                    let estimate = attentionEstimate(side: s).map { "≈ \(fmt($0 * 1e3, 0)) (fit, not run)" } ?? "not run"
                    t.append([m.rawValue, "\(s)", "\(s * s)", estimate, "–", "–", "0"])
                }
            }
        }
        var lines = ["Scaling, C = \(channels), \(threads) thread(s); \(machineDescription())", t.render(), ""]
        var slopes = TextTable(["module", "slope of log t vs log N", "fitted over s"])
        for m in modules {
            if let f = fit(m) { slopes.append([m.rawValue, fmt(f.slope, 3), f.sides.map(String.init).joined(separator: ",")]) }
        }
        lines.append(slopes.render())
        if let c = crossover() {
            lines.append("\nFull attention is 10× slower than GSA content from N ≈ \(fmt(c.n, 0)) (s ≈ \(fmt(c.n.squareRoot(), 1))), \(c.method).")
        }
        return lines.joined(separator: "\n")
    }

    func records() -> [JSONValue] {
        var out: [JSONValue] = points.map { p in
            .object([("module", .string(p.module.rawValue)), ("side", .integer(p.side)), ("n", .integer(p.n)),
                     ("median_ms", .number(p.seconds * 1e3)),
                     ("gflops", p.flops > 0 ? .number(p.flops / p.seconds / 1e9) : .string("n/a")),
                     ("peak_mb", .number(Double(p.peakBytes) / 1e6)), ("samples", .integer(p.samples)),
                     ("threads", .integer(threads)), ("channels", .integer(channels))])
        }
        for m in modules {
            guard let f = fit(m) else { continue }
            out.append(.object([("module", .string(m.rawValue)), ("slope", .number(f.slope)),
                                ("fit_sides", .array(f.sides.map { .integer($0) }))]))
        }
        if let c = crossover() {
            out.append(.object([("crossover_10x_n", .number(c.n)), ("method", .string(c.method))]))
        }
        return out
    }

    func csv() -> String {
        var lines = ["module,side,n,median_ms,gflops,peak_mb,samples,threads,channels"]
        for p in points {
            lines.append("\(p.module.rawValue),\(p.side),\(p.n),\(p.seconds * 1e3),\(p.flops / p.seconds / 1e9)," +
                         "\(Double(p.peakBytes) / 1e6),\(p.samples),\(threads),\(channels)")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// A log-log SVG line plot of time against N, one polyline per module, written by hand.
enum ScalingPlot {
    static func svg(_ report: ScalingReport) -> String {
        let (width, height, left, right, top, bottom) = (720.0, 480.0, 80.0, 170.0, 30.0, 60.0)
        let pts = report.points.filter { $0.seconds > 0 }
        guard !pts.isEmpty else { return "<svg xmlns=\"http://www.w3.org/2000/svg\"/>\n" }
        let xs = pts.map { log10(Double($0.n)) }, ys = pts.map { log10($0.seconds * 1e3) }
        let (x0, x1) = (floor(xs.min()!), ceil(xs.max()!)), (y0, y1) = (floor(ys.min()!), ceil(ys.max()!))
        let px = { (x: Double) in left + (x - x0) / max(x1 - x0, 1) * (width - left - right) }
        let py = { (y: Double) in height - bottom - (y - y0) / max(y1 - y0, 1) * (height - top - bottom) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" " +
            "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        for d in stride(from: x0, through: x1, by: 1) {
            s += "<line x1=\"\(fmt(px(d)))\" y1=\"\(top)\" x2=\"\(fmt(px(d)))\" y2=\"\(height - bottom)\" stroke=\"#ddd\"/>\n"
            s += "<text x=\"\(fmt(px(d)))\" y=\"\(height - bottom + 18)\" text-anchor=\"middle\">10^\(Int(d))</text>\n"
        }
        for d in stride(from: y0, through: y1, by: 1) {
            s += "<line x1=\"\(left)\" y1=\"\(fmt(py(d)))\" x2=\"\(width - right)\" y2=\"\(fmt(py(d)))\" stroke=\"#ddd\"/>\n"
            s += "<text x=\"\(left - 8)\" y=\"\(fmt(py(d) + 4))\" text-anchor=\"end\">10^\(Int(d))</text>\n"
        }
        s += "<text x=\"\((left + width - right) / 2)\" y=\"\(height - 15)\" text-anchor=\"middle\">N = s² pixels</text>\n"
        s += "<text x=\"20\" y=\"\((top + height - bottom) / 2)\" transform=\"rotate(-90 20 \((top + height - bottom) / 2))\" " +
            "text-anchor=\"middle\">median time (ms), C = \(report.channels), \(report.threads) thread(s)</text>\n"
        let colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"]
        for (i, m) in report.modules.enumerated() {
            let line = pts.filter { $0.module == m }.sorted { $0.n < $1.n }
            guard !line.isEmpty else { continue }
            let colour = colours[i % colours.count]
            let coords = line.map { "\(fmt(px(log10(Double($0.n))))),\(fmt(py(log10($0.seconds * 1e3))))" }
            s += "<polyline fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2\" points=\"\(coords.joined(separator: " "))\"/>\n"
            for c in coords {
                let xy = c.split(separator: ",")
                s += "<circle cx=\"\(xy[0])\" cy=\"\(xy[1])\" r=\"3\" fill=\"\(colour)\"/>\n"
            }
            let slope = report.fit(m).map { " (slope \(fmt($0.slope, 2)))" } ?? ""
            let ly = top + 20 + Double(i) * 20
            s += "<line x1=\"\(width - right + 10)\" y1=\"\(ly)\" x2=\"\(width - right + 30)\" y2=\"\(ly)\" stroke=\"\(colour)\" stroke-width=\"2\"/>\n"
            s += "<text x=\"\(width - right + 35)\" y=\"\(ly + 4)\">\(m.rawValue)\(slope)</text>\n"
        }
        return s + "</svg>\n"
    }
}
