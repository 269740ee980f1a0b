//! The fused ops under `Autodiff<B>`: one graph node per op, whose backward is the inner
//! backend's `*_backward` method (burn's backend-extension pattern). When the inner
//! backend's kernels are off, the op is the plain composition differentiated op by op,
//! exactly the graph the models built before the kernels existed.

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::ops::FloatTensor;

use super::{AttnLayout, FusedOps, float, linear_plain, plain, prim};

/// Hand a gradient to a parent that asked for one.
macro_rules! give {
    ($b:ty, $grads:expr, $parent:expr, $grad:expr) => {
        if let Some(node) = $parent {
            $grads.register::<$b>(node.id, $grad);
        }
    };
}

#[derive(Debug)]
struct RmsNormNode;

impl<B: FusedOps> Backward<B, 2> for RmsNormNode {
    type State = (FloatTensor<B>, FloatTensor<B>, f64);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (x, weight, eps) = ops.state;
        let (dx, dw) = B::rms_norm_backward(x, weight, eps, grad);
        let [px, pw] = ops.parents;
        give!(B, grads, px, dx);
        give!(B, grads, pw, dw);
    }
}

#[derive(Debug)]
struct LayerNormNode;

impl<B: FusedOps> Backward<B, 3> for LayerNormNode {
    type State = (FloatTensor<B>, FloatTensor<B>, f64);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (x, weight, eps) = ops.state;
        let (dx, dw, db) = B::layer_norm_backward(x, weight, eps, grad);
        let [px, pw, pb] = ops.parents;
        give!(B, grads, px, dx);
        give!(B, grads, pw, dw);
        give!(B, grads, pb, db);
    }
}

#[derive(Debug)]
struct RopeNode;

impl<B: FusedOps> Backward<B, 1> for RopeNode {
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (cos, sin) = ops.state;
        let [px] = ops.parents;
        give!(B, grads, px, B::rope_backward(cos, sin, grad));
    }
}

#[derive(Debug)]
struct SwiGluNode;

impl<B: FusedOps> Backward<B, 2> for SwiGluNode {
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (gate, up) = ops.state;
        let (dg, du) = B::swiglu_backward(gate, up, grad);
        let [pg, pu] = ops.parents;
        give!(B, grads, pg, dg);
        give!(B, grads, pu, du);
    }
}

#[derive(Debug)]
struct GeluNode;

impl<B: FusedOps> Backward<B, 1> for GeluNode {
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let [px] = ops.parents;
        give!(B, grads, px, B::fused_gelu_backward(ops.state, grad));
    }
}

#[derive(Debug)]
struct AttentionNode;

/// What the attention backward needs: the inputs, the output and each query's
/// log-sum-exp (never the scores).
type AttentionState<B> = ([FloatTensor<B>; 5], AttnLayout);

impl<B: FusedOps> Backward<B, 3> for AttentionNode {
    type State = AttentionState<B>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let ([q, k, v, out, lse], layout) = ops.state;
        let (dq, dk, dv) = B::attention_backward(q, k, v, out, lse, grad, &layout);
        let [pq, pk, pv] = ops.parents;
        give!(B, grads, pq, dq);
        give!(B, grads, pk, dk);
        give!(B, grads, pv, dv);
    }
}

/// burn's own linear node, around [`FusedOps::fused_linear`]: `x` is kept only for the
/// weight's gradient and the weight only for `x`'s.
#[derive(Debug)]
struct LinearNode;

type LinearState<B> = (Option<FloatTensor<B>>, Option<FloatTensor<B>>);

/// The gradients a linear node's parents asked for (`want`: x, weight, bias); `x` is
/// kept only when the weight wants a gradient, the weight only when `x` does.
fn linear_grads<B: FusedOps>(
    (x, weight): LinearState<B>,
    grad: FloatTensor<B>,
    want: [bool; 3],
) -> [Option<FloatTensor<B>>; 3] {
    let x = x.filter(|_| want[1]);
    let weight = weight.filter(|_| want[0]);
    B::fused_linear_backward(x, weight, grad, want[2])
}

impl<B: FusedOps> Backward<B, 3> for LinearNode {
    type State = LinearState<B>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let [px, pw, pb] = ops.parents;
        let want = [px.is_some(), pw.is_some(), pb.is_some()];
        let [dx, dw, db] = linear_grads::<B>(ops.state, grad, want);
        for (parent, g) in [(px, dx), (pw, dw), (pb, db)] {
            if let (Some(node), Some(g)) = (parent, g) {
                grads.register::<B>(node.id, g);
            }
        }
    }
}

impl<B: FusedOps> Backward<B, 2> for LinearNode {
    type State = LinearState<B>;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let [px, pw] = ops.parents;
        let want = [px.is_some(), pw.is_some(), false];
        let [dx, dw, _] = linear_grads::<B>(ops.state, grad, want);
        for (parent, g) in [(px, dx), (pw, dw)] {
            if let (Some(node), Some(g)) = (parent, g) {
                grads.register::<B>(node.id, g);
            }
        }
    }
}

impl<B: FusedOps, C: CheckpointStrategy> FusedOps for Autodiff<B, C> {
    fn fused_enabled() -> bool {
        B::fused_enabled()
    }

    fn device_memory(device: &Self::Device) -> Option<u64> {
        B::device_memory(device)
    }

    fn burn_attention() -> bool {
        B::burn_attention()
    }

    fn fused_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
    ) -> FloatTensor<Self> {
        if !B::fused_enabled() {
            return linear_plain::<Self>(x, weight, bias);
        }
        let (x_tracked, w_tracked) = (x.is_tracked(), weight.is_tracked());
        let out = B::fused_linear(
            x.primitive.clone(),
            weight.primitive.clone(),
            bias.as_ref().map(|b| b.primitive.clone()),
        );
        let state = || -> LinearState<B> {
            (
                w_tracked.then(|| x.primitive.clone()),
                x_tracked.then(|| weight.primitive.clone()),
            )
        };
        match &bias {
            Some(b) => match <LinearNode as Backward<B, 3>>::prepare::<C>(
                LinearNode,
                [x.node.clone(), weight.node.clone(), b.node.clone()],
            )
            .compute_bound()
            .stateful()
            {
                OpsKind::Tracked(prep) => prep.finish(state(), out),
                OpsKind::UnTracked(prep) => prep.finish(out),
            },
            None => match <LinearNode as Backward<B, 2>>::prepare::<C>(
                LinearNode,
                [x.node.clone(), weight.node.clone()],
            )
            .compute_bound()
            .stateful()
            {
                OpsKind::Tracked(prep) => prep.finish(state(), out),
                OpsKind::UnTracked(prep) => prep.finish(out),
            },
        }
    }

    fn rms_norm(x: FloatTensor<Self>, weight: FloatTensor<Self>, eps: f64) -> FloatTensor<Self> {
        if !B::fused_enabled() {
            return prim(plain::rms_norm::<Self>(float(x), float(weight), eps));
        }
        let out = B::rms_norm(x.primitive.clone(), weight.primitive.clone(), eps);
        match RmsNormNode
            .prepare::<C>([x.node.clone(), weight.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((x.primitive, weight.primitive, eps), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    fn fused_layer_norm(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self> {
        if !B::fused_enabled() {
            return prim(plain::layer_norm::<Self>(
                float(x),
                float(weight),
                float(bias),
                eps,
            ));
        }
        let out = B::fused_layer_norm(
            x.primitive.clone(),
            weight.primitive.clone(),
            bias.primitive.clone(),
            eps,
        );
        match LayerNormNode
            .prepare::<C>([x.node.clone(), weight.node.clone(), bias.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((x.primitive, weight.primitive, eps), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    fn rope(
        x: FloatTensor<Self>,
        cos: FloatTensor<Self>,
        sin: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        if !B::fused_enabled() {
            return prim(plain::rope::<Self>(float(x), float(cos), float(sin)));
        }
        // The angles are constants (positions), never differentiated.
        let out = B::rope(
            x.primitive.clone(),
            cos.primitive.clone(),
            sin.primitive.clone(),
        );
        match RopeNode
            .prepare::<C>([x.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((cos.primitive, sin.primitive), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    fn fused_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        layout: &AttnLayout,
    ) -> FloatTensor<Self> {
        if !B::fused_enabled() {
            return prim(plain::attend::<Self>(
                float(q),
                float(k),
                float(v),
                layout,
                B::burn_attention(),
            ));
        }
        let node = AttentionNode
            .prepare::<C>([q.node.clone(), k.node.clone(), v.node.clone()])
            .compute_bound()
            .stateful();
        match node {
            OpsKind::Tracked(prep) => {
                let (out, lse) = B::attention_lse(
                    q.primitive.clone(),
                    k.primitive.clone(),
                    v.primitive.clone(),
                    layout,
                );
                let state = (
                    [q.primitive, k.primitive, v.primitive, out.clone(), lse],
                    layout.clone(),
                );
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fused_attention(
                q.primitive,
                k.primitive,
                v.primitive,
                layout,
            )),
        }
    }

    fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        if !B::fused_enabled() {
            return prim(plain::gelu::<Self>(float(x)));
        }
        let out = B::fused_gelu(x.primitive.clone());
        match GeluNode
            .prepare::<C>([x.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(x.primitive, out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    fn swiglu(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self> {
        if !B::fused_enabled() {
            return prim(plain::swiglu::<Self>(float(gate), float(up)));
        }
        let out = B::swiglu(gate.primitive.clone(), up.primitive.clone());
        match SwiGluNode
            .prepare::<C>([gate.node.clone(), up.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((gate.primitive, up.primitive), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }
}
