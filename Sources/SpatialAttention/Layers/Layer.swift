/// An inference layer: a value that maps a batch of images to a batch of images.
///
/// Every layer of the package (convolutions, normalisation, attention modules, whole models)
/// conforms, so models can be composed, called on a batch, and report their parameters and MACs.
public protocol Layer: Sendable {
    /// Applies the layer to `x` (`[N, C, H, W]`, either layout unless the layer says otherwise).
    ///
    /// - Throws: ``ShapeError`` when `x` does not fit the layer.
    func callAsFunction(_ x: Tensor) throws -> Tensor

    /// The shape of the output for an input of `input`.
    ///
    /// - Throws: ``ShapeError`` when `input` does not fit the layer.
    func outputShape(for input: Shape) throws -> Shape

    /// The number of learned parameters (torchvision convention: weights and biases, BN weight and
    /// bias; running statistics are buffers and do not count).
    var parameterCount: Int { get }

    /// Multiply-accumulates for one forward pass on `input`, in the convention of the papers'
    /// tables (docs/complexity.md): convolutions and fully connected layers count their MACs, BN
    /// and ReLU one per output element, other element-wise work zero.
    func multiplyAccumulates(for input: Shape) throws -> Int
}
