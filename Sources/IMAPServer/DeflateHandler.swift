import CompressNIO
import NIOCore

/// RFC 4978 COMPRESS=DEFLATE: raw DEFLATE (RFC 1951) in both directions, inserted between TLS (if
/// any) and the IMAP handler once the tagged `OK` has left uncompressed.
///
/// Outbound, writes are collected and compressed together when the channel is flushed, with a
/// sync flush so the client can decode everything sent so far (RFC 4978 §4). Inbound, each read is
/// inflated into buffers of at most 64 KiB, each passed on at once, so a small compressed read that
/// expands enormously (a "zip bomb") never sits in memory whole; the IMAP parser bounds what it keeps.
final class DeflateHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let compressor = CompressionAlgorithm.deflate().compressor
    private let decompressor = CompressionAlgorithm.deflate().decompressor
    private var pending: ByteBuffer?
    private var pendingPromises: [EventLoopPromise<Void>] = []
    private var broken = false
    private static let inflateChunk = 1 << 16

    func handlerAdded(context: ChannelHandlerContext) {
        do {
            try compressor.startStream()
            try decompressor.startStream()
        } catch {
            broken = true
            context.fireErrorCaught(error)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        try? compressor.finishStream()
        try? decompressor.finishStream()
        for p in pendingPromises { p.fail(ChannelError.ioOnClosedChannel) }
        pendingPromises = []
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !broken else { return }
        var input = unwrapInboundIn(data)
        while input.readableBytes > 0 {
            var out = context.channel.allocator.buffer(capacity: Self.inflateChunk)
            do {
                try decompressor.streamInflate(from: &input, to: &out)
                if out.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(out)) }
                break
            } catch let e as CompressNIOError where e == .bufferOverflow {
                // The output buffer is full: pass it on and inflate the rest into a new one.
                context.fireChannelRead(wrapInboundOut(out))
            } catch let e as CompressNIOError where e == .inputBufferOverflow {
                // All input consumed; the stream needs more.
                if out.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(out)) }
                break
            } catch {
                broken = true
                context.fireErrorCaught(error)
                return
            }
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var bytes = unwrapOutboundIn(data)
        if pending == nil {
            pending = bytes
        } else {
            pending!.writeBuffer(&bytes)
        }
        if let promise { pendingPromises.append(promise) }
    }

    func flush(context: ChannelHandlerContext) {
        guard var input = pending else { return context.flush() }
        pending = nil
        let promises = pendingPromises
        pendingPromises = []
        do {
            let out = try input.compressStream(with: compressor, flush: .sync, allocator: context.channel.allocator)
            let written = context.write(wrapOutboundOut(out))
            for p in promises { written.cascade(to: p) }
            context.flush()
        } catch {
            for p in promises { p.fail(error) }
            context.fireErrorCaught(error)
        }
    }
}
