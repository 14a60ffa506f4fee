import Foundation

/// The scaling table, fits and files of `spatial-bench scaling`.
struct ScalingReport {
    let points: [ScalingPoint]
    let modules: [ScalingModule]
    let sides: [Int]
    let cache: CacheState
    let attentionMaxSide: Int
    let channels: Int
    let threads: Int

    /// Sides from which the slope is fitted (small images are dominated by fixed costs).
    static let fitFromSide = 28

    /// The statistic a slope is fitted on.
    enum Statistic {
        /// Warm medians (the headline), warm minima (less sensitive to a shared machine's load), cold medians.
        case warmMedian, warmMinimum, coldMedian

        func value(_ p: ScalingPoint) -> Double? {
            switch self {
            case .warmMedian: return p.warm?.median
            case .warmMinimum: return p.warm?.minimum
            case .coldMedian: return p.cold?.median
            }
        }
    }

    /// `log t = intercept + slope·log N`, least squares over the module's points with `s ≥ 28` that
    /// have the statistic (by default the headline: warm medians, or cold ones in a cold-only run).
    func fit(_ module: ScalingModule, on statistic: Statistic? = nil) -> (slope: Double, intercept: Double, sides: [Int])? {
        let statistic = statistic ?? (cache == .cold ? .coldMedian : .warmMedian)
        let used = points.filter { $0.module == module && $0.side >= ScalingReport.fitFromSide && statistic.value($0) != nil }
        guard used.count >= 2 else { return nil }
        let xs = used.map { log(Double($0.n)) }, ys = used.map { log(statistic.value($0)!) }
        let mx = xs.reduce(0, +) / Double(xs.count), my = ys.reduce(0, +) / Double(ys.count)
        var sxy = 0.0, sxx = 0.0
        for (x, y) in zip(xs, ys) { sxy += (x - mx) * (y - my); sxx += (x - mx) * (x - mx) }
        let slope = sxy / sxx
        return (slope, my - slope * mx, used.map(\.side))
    }

    /// The slope between the module's two largest measured sides (warm medians, or cold in a
    /// cold-only run): the asymptotic exponent once fixed and linear costs are small.
    func lastSegmentSlope(_ module: ScalingModule) -> Double? {
        let statistic: Statistic = cache == .cold ? .coldMedian : .warmMedian
        let used = points.filter { $0.module == module && statistic.value($0) != nil }.sorted { $0.n < $1.n }.suffix(2)
        guard used.count == 2, let a = used.first, let b = used.last else { return nil }
        return log(statistic.value(b)! / statistic.value(a)!) / log(Double(b.n) / Double(a.n))
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
        let ms = { (m: Measurement?, f: (Measurement) -> Double) in m.map { fmt(f($0) * 1e3, 3) } ?? "–" }
        var t = TextTable(["module", "s", "N", "median ms", "min ms", "cold median ms", "GFLOP/s", "peak MB",
                           "samples"])
        for m in modules {
            for p in points.filter({ $0.module == m }) {
                t.append([m.rawValue, "\(p.side)", "\(p.n)", ms(p.warm, \.median), ms(p.warm, \.minimum),
                          ms(p.cold, \.median), p.flops > 0 ? fmt(p.flops / p.seconds / 1e9) : "–",
                          fmt(Double(p.peakBytes) / 1e6, 0),
                          [p.warm, p.cold].compactMap { $0.map { "\($0.samples.count)" } }.joined(separator: "/")])
            }
            if m == .attention {
                for s in sides.sorted() where s > attentionMaxSide {
                    let estimate = attentionEstimate(side: s).map { "≈ \(fmt($0 * 1e3, 0)) (fit, not run)" } ?? "not run"
                    t.append([m.rawValue, "\(s)", "\(s * s)", estimate, "–", "–", "–", "–", "0"])
                }
            }
        }
        let legend = "warm: the same input again and again; cold: input evicted from every cache level before each call; samples warm/cold"
        var lines = ["Scaling, C = \(channels), \(threads) thread(s); \(machineDescription())", legend, t.render(), ""]
        var slopes = TextTable(["module", "ops ∝ N^", "slope (medians)", "slope (minima)", "slope (cold medians)",
                                "fitted over s", "two largest s"])
        for m in modules {
            let fits = [fit(m, on: .warmMedian), fit(m, on: .warmMinimum), fit(m, on: .coldMedian)]
            guard let sides = fits.compactMap({ $0 }).first?.sides else { continue }
            let fitted: [String] = fits.map { $0.map { fmt($0.slope, 3) } ?? "–" }
            let last: String = lastSegmentSlope(m).map { fmt($0, 3) } ?? "–"
            slopes.append([m.rawValue, m.complexity] + fitted + [sides.map(String.init).joined(separator: ","), last])
        }
        lines.append(slopes.render())
        if let c = crossover() {
            lines.append("\nFull attention is 10× slower than GSA content from N ≈ \(fmt(c.n, 0)) (s ≈ \(fmt(c.n.squareRoot(), 1))), \(c.method).")
        }
        return lines.joined(separator: "\n")
    }

    func records() -> [JSONValue] {
        let number = { (value: Double?) in JSONValue.number(value ?? .nan) }  // NaN prints as null
        var out: [JSONValue] = points.map { p in
            .object([("module", .string(p.module.rawValue)), ("side", .integer(p.side)), ("n", .integer(p.n)),
                     ("median_ms", .number(p.seconds * 1e3)), ("min_ms", number(p.warm.map { $0.minimum * 1e3 })),
                     ("cold_median_ms", number(p.cold.map { $0.median * 1e3 })),
                     ("cold_min_ms", number(p.cold.map { $0.minimum * 1e3 })),
                     ("gflops", p.flops > 0 ? .number(p.flops / p.seconds / 1e9) : .string("n/a")),
                     ("peak_mb", .number(Double(p.peakBytes) / 1e6)),
                     ("samples", .integer(p.warm?.samples.count ?? 0)), ("cold_samples", .integer(p.cold?.samples.count ?? 0)),
                     ("threads", .integer(threads)), ("channels", .integer(channels))])
        }
        for m in modules {
            guard let f = fit(m) else { continue }
            out.append(.object([("module", .string(m.rawValue)), ("slope", .number(f.slope)),
                                ("slope_minima", number(fit(m, on: .warmMinimum)?.slope)),
                                ("slope_cold", number(fit(m, on: .coldMedian)?.slope)),
                                ("complexity_exponent", .string(m.complexity)),
                                ("slope_two_largest_sides", number(lastSegmentSlope(m))),
                                ("fit_sides", .array(f.sides.map { .integer($0) }))]))
        }
        if let c = crossover() {
            out.append(.object([("crossover_10x_n", .number(c.n)), ("method", .string(c.method))]))
        }
        return out
    }

    func csv() -> String {
        var lines = ["module,side,n,median_ms,min_ms,cold_median_ms,cold_min_ms,gflops,peak_mb,samples,cold_samples,threads,channels"]
        let ms = { (m: Measurement?, f: (Measurement) -> Double) in m.map { "\(f($0) * 1e3)" } ?? "" }
        for p in points {
            lines.append("\(p.module.rawValue),\(p.side),\(p.n),\(p.seconds * 1e3),\(ms(p.warm, \.minimum))," +
                         "\(ms(p.cold, \.median)),\(ms(p.cold, \.minimum)),\(p.flops / p.seconds / 1e9)," +
                         "\(Double(p.peakBytes) / 1e6),\(p.warm?.samples.count ?? 0),\(p.cold?.samples.count ?? 0),\(threads),\(channels)")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// A log-log SVG line plot of time against N, one polyline per module, written by hand.
enum ScalingPlot {
    static func svg(_ report: ScalingReport) -> String {
        let (width, height, left, right, top, bottom) = (800.0, 480.0, 80.0, 250.0, 30.0, 60.0)
        let series: [(statistic: ScalingReport.Statistic, dash: String)] = [(.warmMedian, ""), (.coldMedian, " stroke-dasharray=\"6 4\"")]
        let pts = report.points.filter { p in series.contains { ($0.statistic.value(p) ?? 0) > 0 } }
        guard !pts.isEmpty else { return "<svg xmlns=\"http://www.w3.org/2000/svg\"/>\n" }
        let xs = pts.map { log10(Double($0.n)) }
        let ys = pts.flatMap { p in series.compactMap { $0.statistic.value(p) }.filter { $0 > 0 }.map { log10($0 * 1e3) } }
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
            "text-anchor=\"middle\">median time (ms), C = \(report.channels), \(report.threads) thread(s); dashed: cold</text>\n"
        let colours = ["#7f7f7f", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"]
        for (i, m) in report.modules.enumerated() {
            let line = pts.filter { $0.module == m }.sorted { $0.n < $1.n }
            guard !line.isEmpty else { continue }
            let colour = colours[i % colours.count]
            for (statistic, dash) in series {
                let coords = line.compactMap { p in
                    statistic.value(p).map { "\(fmt(px(log10(Double(p.n))))),\(fmt(py(log10($0 * 1e3))))" }
                }
                guard !coords.isEmpty else { continue }
                s += "<polyline fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2\"\(dash) points=\"\(coords.joined(separator: " "))\"/>\n"
                for c in coords {
                    let xy = c.split(separator: ",")
                    s += "<circle cx=\"\(xy[0])\" cy=\"\(xy[1])\" r=\"3\" fill=\"\(colour)\"/>\n"
                }
            }
            let slopes = [("", ScalingReport.Statistic.warmMedian), ("cold ", .coldMedian)].compactMap { name, statistic in
                report.fit(m, on: statistic).map { "\(name)\(fmt($0.slope, 2))" }
            }
            let slope = slopes.isEmpty ? "" : " (slope \(slopes.joined(separator: ", ")))"
            let ly = top + 20 + Double(i) * 20
            s += "<line x1=\"\(width - right + 10)\" y1=\"\(ly)\" x2=\"\(width - right + 30)\" y2=\"\(ly)\" stroke=\"\(colour)\" stroke-width=\"2\"/>\n"
            s += "<text x=\"\(width - right + 35)\" y=\"\(ly + 4)\">\(m.rawValue)\(slope)</text>\n"
        }
        return s + "</svg>\n"
    }
}
