"""Wrong input must fail early with a message that says what went wrong.

A student who passes a (B, T) array where (T, B) was expected should read the
op's name and both shapes in the error, not a bare NumPy broadcast error from
deep inside the library. Every test checks the message, not just the type.
"""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn.functions import Tanh


def floats(*shape, dtype=np.float64):
    return tr.Tensor(np.ones(shape, dtype=dtype), requires_grad=True)


# --------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------

def test_add_with_shapes_that_do_not_broadcast():
    with pytest.raises(ValueError, match=r"Add: cannot apply to input shapes \(2, 3\), \(4,\)"):
        floats(2, 3) + floats(4)


def test_matmul_with_mismatched_inner_dimensions():
    with pytest.raises(ValueError, match=r"MatMul.*\(2, 3\).*\(4, 5\).*inner dimensions"):
        floats(2, 3) @ floats(4, 5)


def test_matmul_of_a_scalar():
    with pytest.raises(ValueError, match=r"MatMul.*at least one dimension"):
        floats() @ floats(2)


def test_concat_with_mismatched_shapes():
    with pytest.raises(ValueError, match=r"Concat: cannot apply to input shapes \(2, 3\), \(2, 4\)"):
        tr.concat([floats(2, 3), floats(2, 4)], axis=0)


def test_stack_with_different_shapes():
    with pytest.raises(ValueError, match=r"stack: all tensors need the same shape, got \[\(2,\), \(3,\)\]"):
        tr.stack([floats(2), floats(3)])


@pytest.mark.parametrize("sections, expected", [(3, r"cannot be cut into 3 equal pieces"),
                                                ([1, 1], r"sizes \[1, 1\] add up to 2.*length 4")])
def test_split_that_does_not_fit(sections, expected):
    with pytest.raises(ValueError, match=r"split: .*" + expected):
        tr.split(floats(4, 2), sections)


def test_reshape_to_a_different_size():
    with pytest.raises(ValueError, match=r"Reshape: cannot apply to input shapes \(2, 3\).*size 6.*\(4,\)"):
        floats(2, 3).reshape(4)


def test_permute_with_wrong_axes():
    with pytest.raises(ValueError, match=r"Permute.*\(2, 3\).*not a permutation"):
        floats(2, 3).permute(0, 0)


def test_sum_over_a_missing_axis():
    with pytest.raises(ValueError, match=r"Sum: cannot apply to input shapes \(2, 3\).*axis 5"):
        floats(2, 3).sum(axis=5)


def test_index_out_of_range():
    with pytest.raises(IndexError, match=r"Index: .*out of bounds.*tensor shape \(3,\)"):
        floats(3)[5]


# --------------------------------------------------------------------------
# Dtypes
# --------------------------------------------------------------------------

def test_int_tensor_where_floats_are_needed():
    with pytest.raises(TypeError, match=r"Tanh: needs floating-point tensors, got dtype int64 \(shape \(3,\)\)"):
        tr.tensor(np.array([1, 2, 3], dtype=np.int64)).tanh()


def test_mixed_float32_and_float64():
    with pytest.raises(TypeError, match=r"Mul: inputs have different dtypes float32 and float64 "
                                        r"\(shapes \(2,\) and \(2,\)\)"):
        floats(2, dtype=np.float32) * floats(2, dtype=np.float64)


def test_requires_grad_on_an_int_tensor():
    with pytest.raises(TypeError, match=r"requires_grad: only floating-point.*got dtype int64"):
        tr.tensor(np.array([1, 2], dtype=np.int64), requires_grad=True)


def test_python_numbers_take_the_tensor_dtype():
    """A float literal is not a float64 tensor: float32 * 2.5 stays float32."""
    assert (floats(2, dtype=np.float32) * 2.5).dtype == np.float32


# --------------------------------------------------------------------------
# Objects that are not numbers
# --------------------------------------------------------------------------

@pytest.mark.parametrize("value, kind", [("abc", "str"), ({"a": 1}, "dict")])
def test_making_a_tensor_from_a_non_number(value, kind):
    with pytest.raises(TypeError, match=rf"Tensor: cannot make a tensor from {kind}"):
        tr.tensor(value)


@pytest.mark.parametrize("combine, op", [
    (lambda x: x + "abc", "Add"),
    (lambda x: x * {"a": 1}, "Mul"),
    (lambda x: x @ "abc", "MatMul"),
    (lambda x: x - ["a", "b"], "Sub"),
])
def test_combining_a_tensor_with_a_non_number(combine, op):
    with pytest.raises(TypeError, match=rf"{op}: cannot combine a Tensor of shape \(2,\) with"):
        combine(floats(2))


def test_calling_an_op_on_a_raw_array():
    with pytest.raises(TypeError, match=r"Tanh: expected Tensor inputs, got ndarray"):
        Tanh.apply(np.ones(2))


# --------------------------------------------------------------------------
# backward() misuse
# --------------------------------------------------------------------------

def test_backward_on_a_non_scalar_without_grad():
    with pytest.raises(RuntimeError, match=r"grad can be omitted only for a single-element tensor.*shape \(2, 3\)"):
        (floats(2, 3) * 2.0).backward()


def test_backward_with_a_grad_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"backward: grad has shape \(3,\) but the tensor has shape \(2, 3\)"):
        (floats(2, 3) * 2.0).backward(np.ones(3))


def test_backward_twice_without_retain_graph():
    loss = (floats(2) * 2.0).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match=r"Sum a second time.*retain_graph=True"):
        loss.backward()


def test_backward_on_a_tensor_that_does_not_require_grad():
    with pytest.raises(RuntimeError, match=r"backward: this tensor does not require grad"):
        tr.tensor([1.0, 2.0]).sum().backward()


def test_gradcheck_without_float_inputs():
    with pytest.raises(ValueError, match=r"gradcheck: no floating-point input"):
        tr.gradcheck(lambda i: i, [np.array([1, 2])])
