"""Cell sources of the course notebooks (see make_notebooks.py for the «blank» syntax).

Each entry is ("md" | "code", source) or ("md" | "code", source, only) where ``only`` is
"solution" or "exercise" for cells shown in one version.
"""
from make_notebooks import SETUP_DATA

TUTORIAL_1 = [
    ("md", """
# Tutorial 1: LeNet-5 on MNIST

In this tutorial you load the MNIST handwritten digits, prepare them for a CNN, build
LeNet-5 from the lecture's picture, train it and look at its predictions.

Fill in every `?` (the cells containing one do not run until you do). The grader checks the
variables you create, so keep their names. Training uses a small subset and few epochs so
the notebook runs in a minute or two; raise `N_TRAIN` and `EPOCHS` to see the full result.
"""),
    ("code", SETUP_DATA + '''

import numpy as np
import matplotlib.pyplot as plt
import pycnn
from pycnn.datasets import mnist
from pycnn.layers import Input, Conv2D, AveragePooling2D, Flatten, Dense
from pycnn.models import Sequential
from pycnn.utils import to_categorical, set_random_seed

set_random_seed(0)
N_TRAIN, N_TEST, EPOCHS = 3000, 1000, 3'''),
    ("md", """
## 1. Load and inspect the data

`mnist.load_data()` returns `(x_train, y_train), (x_test, y_test)`: 28×28 grey images as
`uint8` (0..255) and their digit labels.
"""),
    ("code", '''
(x_train_full, y_train_full), (x_test_full, y_test_full) = mnist.load_data()
print("train:", x_train_full.shape, x_train_full.dtype, " test:", x_test_full.shape)
print("first labels:", y_train_full[:10])'''),
    ("code", '''
fig, axes = plt.subplots(2, 8, figsize=(10, 3))
for ax, image, label in zip(axes.ravel(), x_train_full, y_train_full):
    ax.imshow(image, cmap="gray")
    ax.set_title(str(label))
    ax.axis("off")
plt.tight_layout()
plt.show()'''),
    ("md", """
## 2. Prepare the inputs

A `Conv2D` layer expects images as `(batch, height, width, channels)`. Scale the pixels to
[0, 1] as `float32` and add a channel axis of size 1, so that `x_train` has shape
`(N_TRAIN, 28, 28, 1)`. Then one-hot encode the labels with `to_categorical` (10 classes).
"""),
    ("code", '''
x_train = (x_train_full[:N_TRAIN].astype("float32") / «255.0»)[..., «np.newaxis»]
x_test = (x_test_full[:N_TEST].astype("float32") / «255.0»)[..., «np.newaxis»]
y_train, y_test = y_train_full[:N_TRAIN], y_test_full[:N_TEST]

y_train_cat = to_categorical(y_train, «10»)
y_test_cat = to_categorical(y_test, «10»)
print(x_train.shape, y_train_cat.shape, y_train[0], "->", y_train_cat[0])'''),
    ("md", """
## 3. Build LeNet-5

From the lecture's picture: a 5×5 convolution with 6 filters and `"same"` padding, a 2×2
average pooling, a 5×5 convolution with 16 filters (no padding), another 2×2 average pooling,
then flatten and the dense part with 120, 84 and 10 units. The hidden layers use the sigmoid
activation; the output layer turns scores into class probabilities.
"""),
    ("code", '''
model = Sequential([
    Input(shape=(28, 28, 1)),
    Conv2D(filters=«6», kernel_size=«5», padding=«"same"», activation="sigmoid"),
    AveragePooling2D(pool_size=«2»),
    Conv2D(filters=«16», kernel_size=«5», activation="sigmoid"),
    AveragePooling2D(pool_size=«2»),
    «Flatten()»,
    Dense(«120», activation="sigmoid"),
    Dense(«84», activation="sigmoid"),
    Dense(«10», activation=«"softmax"»),
])
model.summary()'''),
    ("md", """
## 4. Questions on the architecture

Answer with Python values (the grader checks them) and explain in a sentence below.

1. What shape does the first `Conv2D` (6 filters, `"same"` padding, stride 1) output for one
   28×28×1 image? (height, width, channels)
2. What shape comes out of the first 2×2 average pooling?
3. How many numbers does `Flatten` pass to the first dense layer?
4. What do the softmax outputs of one image sum to?
"""),
    ("code", '''
same_padding_shape = «(28, 28, 6)»
pooled_shape = «(14, 14, 6)»
flatten_size = «400»
softmax_sum = «1.0»'''),
    ("md", """
*Your explanations:*

- `"same"` padding with stride 1 ...
- 2×2 pooling ...
- We flatten because ...
- The dense part ...
- Softmax ...
- AlexNet used ReLU instead of sigmoid, max instead of average pooling, and stacks of small kernels because ...
""", "exercise"),
    ("md", """
*Explanations:*

- `"same"` padding with stride 1 pads the input (2 pixels on each side for a 5×5 kernel) so the
  output keeps the input's height and width; only the channels change (to the number of filters).
- 2×2 pooling with stride 2 halves height and width and keeps the channels; average pooling
  replaces each 2×2 block by its mean (max pooling by its maximum).
- `Flatten` turns the 5×5×16 feature maps into one vector of 400 numbers, because a `Dense`
  layer takes a vector per sample.
- The dense part combines the features found anywhere in the image into a decision; the last
  layer has one unit per class.
- Softmax turns the 10 scores into probabilities: positive numbers that sum to 1.
- AlexNet: ReLU does not saturate for positive inputs, so gradients do not vanish and deep
  networks train much faster; max pooling keeps the strongest response (better features than
  averaging them away); stacks of small kernels (as VGG later made systematic) see the same
  receptive field as one large kernel with fewer parameters and more non-linearities.
""", "solution"),
    ("md", """
## 5. Compile and train

Use the Adam optimizer, the categorical cross-entropy loss (our labels are one-hot) and the
accuracy metric. Keep 10% of the training data for validation.
"""),
    ("code", '''
model.compile(optimizer=pycnn.optimizers.Adam(learning_rate=0.005),
              loss=«"categorical_crossentropy"», metrics=[«"accuracy"»])
history = model.fit(x_train, y_train_cat, epochs=EPOCHS, batch_size=32, validation_split=«0.1», verbose=2)'''),
    ("code", '''
plt.figure(figsize=(8, 3))
for i, metric in enumerate(["loss", "accuracy"]):
    plt.subplot(1, 2, i + 1)
    plt.plot(history.history[metric], label="train")
    plt.plot(history.history["val_" + metric], label="validation")
    plt.xlabel("epoch")
    plt.title(metric)
    plt.legend()
plt.tight_layout()
plt.show()'''),
    ("md", """
## 6. Predict and compare

`model.predict` returns one row of 10 probabilities per image. The predicted class is the
index of the largest one.
"""),
    ("code", '''
probs = model.predict(x_test, verbose=0)
y_pred = «np.argmax(probs, axis=1)»
test_accuracy = float(np.mean(y_pred == y_test))
print("rows sum to", probs.sum(axis=1)[:5])
print(f"test accuracy on {N_TEST} images: {test_accuracy:.3f}")'''),
    ("code", '''
fig, axes = plt.subplots(2, 8, figsize=(10, 3))
for ax, image, true, pred in zip(axes.ravel(), x_test, y_test, y_pred):
    ax.imshow(image[..., 0], cmap="gray")
    ax.set_title(f"{pred} (true {true})", color="green" if pred == true else "red", fontsize=9)
    ax.axis("off")
plt.tight_layout()
plt.show()'''),
]

TUTORIAL_2 = [
    ("md", """
# Tutorial 2: inspecting and splitting CIFAR-10, transfer learning, augmentation

1. Look at CIFAR-10 and its class distribution.
2. Split a dataset into train and test parts and see what the ratio and stratification change.
3. Reuse a pretrained network: freeze it, add a new head, train only the head.
4. Augment images with `ImageDataGenerator` and train on the augmented stream.

Offline, `cifar10.load_data()` reads the 5,000-image subset from `$PYCNN_DATA_DIR` (the full
50,000 + 10,000 when the official archive is available). Fill in every `?`.
"""),
    ("code", SETUP_DATA + """

import functools
import numpy as np
import matplotlib.pyplot as plt
import pycnn
from pycnn import visualize
from pycnn.datasets import cifar10, fashion_mnist, class_counts, train_test_split
from pycnn.layers import Input, Resizing, Lambda, Flatten, Dense, Dropout
from pycnn.models import Sequential
from pycnn.preprocessing.image import ImageDataGenerator
from pycnn.utils import to_categorical, set_random_seed

set_random_seed(0)"""),
    ("md", "## 1. CIFAR-10 and its classes"),
    ("code", """
(x_train, y_train), (x_test, y_test) = cifar10.load_data()
class_names = cifar10.class_names
print("train", x_train.shape, y_train.shape, " test", x_test.shape)
visualize.show_images(x_train[:16], y_train[:16], class_names=class_names)
plt.show()"""),
    ("md", """
Count the images of each class with `class_counts(labels, class_names)` and plot the
distribution. Is the dataset balanced?
"""),
    ("code", """
counts = class_counts(«y_train», «class_names»)
for name, count in zip(counts.names, counts.counts):
    print(f"{name:<12}{count:>6}")
visualize.plot_class_distribution(y_train, class_names, title="CIFAR-10 training classes")
plt.show()"""),
    ("md", """
## 2. Train/test split

Put all images together and split them again with `train_test_split`, keeping 20% for testing
and the class proportions of both parts equal (`stratify`).
"""),
    ("code", """
x_all = np.concatenate([x_train, x_test])
y_all = np.concatenate([y_train, y_test]).reshape(-1)
x_tr, x_te, y_tr, y_te = train_test_split(x_all, y_all, test_size=«0.2», stratify=«y_all», seed=0)
print(len(x_tr), "train,", len(x_te), "test")"""),
    ("md", """
A ratio sweep: how big is each part, and how far do the class shares of the test part drift
from the whole dataset's without and with stratification?
"""),
    ("code", """
ratios = [0.1, 0.2, 0.3, 0.4, 0.5]
whole_share = np.bincount(y_all, minlength=10) / len(y_all)
split_sizes, drift_plain, drift_stratified = {}, [], []
for ratio in ratios:
    _, _, a_tr, a_te = train_test_split(x_all, y_all, test_size=ratio, seed=1)
    _, _, b_tr, b_te = train_test_split(x_all, y_all, test_size=ratio, stratify=y_all, seed=1)
    split_sizes[ratio] = (len(b_tr), len(b_te))
    drift_plain.append(np.abs(np.bincount(a_te, minlength=10) / len(a_te) - whole_share).max())
    drift_stratified.append(np.abs(np.bincount(b_te, minlength=10) / len(b_te) - whole_share).max())
print(split_sizes)
fig, axes = plt.subplots(1, 2, figsize=(10, 3))
axes[0].plot(ratios, [s[0] for s in split_sizes.values()], "o-", label="train")
axes[0].plot(ratios, [s[1] for s in split_sizes.values()], "o-", label="test")
axes[0].set_xlabel("test ratio"); axes[0].set_ylabel("images"); axes[0].legend()
axes[1].plot(ratios, drift_plain, "o-", label="random")
axes[1].plot(ratios, drift_stratified, "o-", label="stratified")
axes[1].set_xlabel("test ratio"); axes[1].set_ylabel("largest class-share drift"); axes[1].legend()
plt.tight_layout(); plt.show()"""),
    ("md", """
## 3. Transfer learning with a frozen pretrained base

With the Keras VGG16 ImageNet weights file (`vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`
in `$PYCNN_DATA_DIR`), the base is VGG16 on CIFAR-10 images resized to 64×64 and preprocessed
with `preprocess_input`. Offline without that file, the base is the LeNet-5 shipped with pycnn
(trained on MNIST digits), fine-tuned on Fashion-MNIST clothes: the same steps, a smaller network.
"""),
    ("code", """
from pycnn.applications import VGG16, LeNet5
from pycnn.applications.imagenet_utils import preprocess_input

VGG_WEIGHTS = Path(os.environ.get("PYCNN_DATA_DIR", ".")) / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
USE_VGG = VGG_WEIGHTS.is_file()
N_FT_TRAIN, N_FT_TEST = 3000, 1000
if USE_VGG:
    image_size, preprocess = 64, preprocess_input
    base = VGG16(include_top=False, weights=str(VGG_WEIGHTS), input_shape=(image_size, image_size, 3))
    x_ft, y_ft = x_tr[:N_FT_TRAIN], y_tr[:N_FT_TRAIN]
    x_ft_test, y_ft_test = x_te[:N_FT_TEST], y_te[:N_FT_TEST]
    input_shape, ft_names = (32, 32, 3), class_names
else:
    image_size = 28
    preprocess = functools.partial(np.multiply, 1 / 255.0)   # pixels / 255, as LeNet-5 was trained
    base = LeNet5(include_top=False, weights="mnist")
    x_fashion, y_fashion = fashion_mnist.load_data(subset="test")
    x_ft, x_ft_test, y_ft, y_ft_test = train_test_split(x_fashion[..., None], y_fashion, train_size=N_FT_TRAIN,
                                                        test_size=N_FT_TEST, stratify=y_fashion, seed=0)
    input_shape, ft_names = (28, 28, 1), fashion_mnist.class_names
print("base:", base.name, base.input_shape, "->", base.output_shape, f"{base.count_params():,} params")"""),
    ("md", """
Freeze the base (its weights must not change while the new head learns), check that it has no
trainable weights left, then stack resizing, preprocessing, the base and a new head.
"""),
    ("code", """
base.trainable = «False»
print("trainable weights in the base:", len(base.trainable_weights))

transfer_model = Sequential([
    Input(shape=input_shape),
    Resizing(image_size, image_size),
    Lambda(preprocess),
    base,
    «Flatten()»,
    Dense(64, activation="relu"),
    Dense(«10», activation=«"softmax"»),
])
transfer_model.summary()"""),
    ("code", """
transfer_model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
y_ft_cat, y_ft_test_cat = to_categorical(y_ft, 10), to_categorical(y_ft_test, 10)
transfer_history = transfer_model.fit(x_ft, y_ft_cat, epochs=3, batch_size=64, validation_split=0.1, verbose=2)
transfer_accuracy = float(np.mean(np.argmax(transfer_model.predict(x_ft_test, verbose=0), axis=1) == y_ft_test))
print("test accuracy with the frozen base:", transfer_accuracy)
visualize.plot_history(transfer_history)
plt.show()"""),
    ("md", """
## 4. Data augmentation

`ImageDataGenerator` makes new training images on the fly: small rotations, shifts and
horizontal flips (a flipped shirt is still a shirt). Look at augmented versions of one image,
then train on the augmented stream.
"""),
    ("code", """
datagen = ImageDataGenerator(rotation_range=«15», width_shift_range=0.1, height_shift_range=0.1,
                             horizontal_flip=«True»)
one_image = np.repeat(x_ft[:1], 8, axis=0).astype("float32")
augmented_batch = next(datagen.flow(one_image, batch_size=8, shuffle=False, seed=0))
visualize.show_images(augmented_batch / 255.0)
plt.show()"""),
    ("code", """
augmented_history = transfer_model.fit(datagen.flow(x_ft.astype("float32"), y_ft_cat, batch_size=64, seed=0),
                                       epochs=1, verbose=2)
augmented_accuracy = float(np.mean(np.argmax(transfer_model.predict(x_ft_test, verbose=0), axis=1) == y_ft_test))
print("test accuracy after a pass over augmented data:", augmented_accuracy)"""),
]

LECTURE = [
    ("md", """
# Lecture: CNN basics, computed

Every number on the lecture slides, recomputed with pycnn: convolution by hand and with
`pycnn.convolve2d` / `correlate2d`, edge and ridge detection on photos, stride, padding and
depth, 1×1, dilated and depthwise-separable convolutions, pooling and its backward pass,
parameter counts, residual / inception / U-Net shapes, a 1-D CNN on a seismic-like signal,
and what a trained LeNet-5 learned.
"""),
    ("code", SETUP_DATA + """

import numpy as np
import matplotlib.pyplot as plt
import pycnn
from pycnn import filters, visualize
from pycnn.layers import (Input, Conv1D, Conv2D, DepthwiseConv2D, SeparableConv2D, MaxPooling1D,
                          GlobalMaxPooling1D, Dense)
from pycnn.models import Model, Sequential
from pycnn.utils import set_random_seed

set_random_seed(0)"""),
    ("md", """
## 1. Convolution by hand

A 6×6 image with a vertical step (10 on the left, 0 on the right) and the vertical-edge
kernel `[[1, 0, -1]] * 3`. CNN layers compute a *cross-correlation*: slide the kernel, multiply
element-wise, add. True convolution flips the kernel first.
"""),
    ("code", """
image = np.array([[10, 10, 10, 0, 0, 0]] * 6, dtype=float)
kernel = np.array([[1, 0, -1]] * 3, dtype=float)

def correlate_by_hand(img, k):
    kh, kw = k.shape
    out = np.zeros((img.shape[0] - kh + 1, img.shape[1] - kw + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(img[i:i + kh, j:j + kw] * k)
    return out

by_hand = correlate_by_hand(image, kernel)
print(by_hand)
print("pycnn.correlate2d equals the hand result:",
      np.array_equal(pycnn.correlate2d(image, kernel, mode="valid"), by_hand))
print("convolve2d = correlate2d with the flipped kernel:",
      np.allclose(pycnn.convolve2d(image, kernel, mode="valid"),
                  pycnn.correlate2d(image, kernel[::-1, ::-1], mode="valid")))"""),
    ("md", """
## 2. Edges and ridges on a photo

The shipped 128×128 "cameraman" photo (and a texture from `../shared/data/images` when it is
there), filtered with Sobel edge kernels and a ridge (Laplacian-like) kernel.
"""),
    ("code", """
photo = pycnn.imaging.sample_image().astype(float)
edges_x = pycnn.correlate2d(photo, filters.sobel_x(), mode="same")
edges_y = pycnn.correlate2d(photo, filters.sobel_y(), mode="same")
magnitude = np.hypot(edges_x, edges_y)
ridges = pycnn.correlate2d(photo, filters.ridge(), mode="same")

fig, axes = plt.subplots(1, 4, figsize=(12, 3))
for ax, im, title in zip(axes, [photo, edges_x, magnitude, ridges], ["photo", "sobel x", "edge magnitude", "ridge"]):
    ax.imshow(im, cmap="gray")
    ax.set_title(title)
    ax.axis("off")
plt.show()

brick_path = Path(os.environ.get("PYCNN_DATA_DIR", ".")) / "images" / "brick.png"
if brick_path.is_file():
    from pycnn.preprocessing.image import load_img, img_to_array
    brick = img_to_array(load_img(str(brick_path), color_mode="grayscale"))[..., 0]
    plt.figure(figsize=(8, 3))
    plt.subplot(1, 2, 1); plt.imshow(brick, cmap="gray"); plt.title("brick"); plt.axis("off")
    plt.subplot(1, 2, 2); plt.imshow(filters.edge_map(brick), cmap="gray"); plt.title("edge map"); plt.axis("off")
    plt.show()"""),
    ("md", """
## 3. Depth, stride, padding: the output-size formula

$W_2 = (W_1 - F + 2P) / S + 1$, and a convolution layer outputs one map per filter (its depth).
"""),
    ("code", """
print("AlexNet conv1: 227x227, 11x11 kernels, stride 4 ->", pycnn.conv_output_size(227, 11, strides=4))
print("5x5 input, 3x3 kernel, stride 2, padding 1 ->", pycnn.conv_output_size(5, 3, strides=2, padding=1))
x = np.random.default_rng(0).standard_normal((1, 32, 32, 3)).astype("float32")
for kwargs in [dict(strides=1, padding="valid"), dict(strides=1, padding="same"), dict(strides=2, padding="same")]:
    layer = Conv2D(6, 5, **kwargs)
    print(kwargs, "->", layer(x).shape, "params", layer.count_params())"""),
    ("md", """
## 4. 1×1, dilated and depthwise-separable convolutions

A 1×1 convolution mixes channels at each pixel (cheap depth reduction); a dilated 3×3 kernel
sees a 5×5 window with 9 weights; a depthwise-separable convolution filters each channel alone,
then mixes channels with a 1×1 convolution — far fewer parameters for the same output shape.
"""),
    ("code", """
x = np.random.default_rng(1).standard_normal((1, 28, 28, 64)).astype("float32")
layers_to_compare = {
    "Conv2D 3x3, 128 filters": Conv2D(128, 3, padding="same"),
    "Conv2D 1x1, 32 filters": Conv2D(32, 1),
    "Conv2D 3x3 dilation 2": Conv2D(128, 3, padding="same", dilation_rate=2),
    "DepthwiseConv2D 3x3": DepthwiseConv2D(3, padding="same"),
    "SeparableConv2D 3x3, 128": SeparableConv2D(128, 3, padding="same"),
}
for name, layer in layers_to_compare.items():
    print(f"{name:<28} output {layer(x).shape}  params {layer.count_params():>7,}")
# a 3x3 kernel with dilation 2 spans 2*(3-1)+1 = 5 pixels: on 28 pixels without padding, 28 - 5 + 1 = 24
print("dilated 3x3 (rate 2), valid padding on 28 pixels ->", pycnn.conv_output_size(28, 3, dilation_rate=2))
# hand counts: 3*3*64*128 + 128 = 73,856; separable: 3*3*64 + 64*128 + 128 = 8,896"""),
    ("md", """
## 5. Pooling and where its gradient goes

Max pooling keeps the largest value of each window; in the backward pass the whole gradient of
a window goes to that one position. Average pooling spreads it evenly.
"""),
    ("code", """
a = np.array([[1, 3, 2, 1],
              [4, 2, 0, 1],
              [5, 1, 2, 2],
              [0, 2, 3, 8]], dtype="float32")[None, :, :, None]
print("max pool:\\n", pycnn.ops.max_pool2d(a, 2)[0, :, :, 0])
print("avg pool:\\n", pycnn.ops.avg_pool2d(a, 2)[0, :, :, 0])
dy = np.ones((1, 2, 2, 1), "float32")
print("max pool backward (1 at each window's maximum):\\n", pycnn.ops.max_pool2d_backward(dy, a, 2)[0, :, :, 0])
print("avg pool backward (1/4 everywhere):\\n", pycnn.ops.avg_pool2d_backward(dy, a, 2)[0, :, :, 0])"""),
    ("md", """
## 6. Fully connected vs convolutional

From a 32×32×3 image to six 28×28 maps: a dense layer connecting every input value to every
output value needs 3,072 × 4,704 = 14,450,688 weights; six 5×5×3 filters need (5·5·3 + 1)·6 = 456.
"""),
    ("code", """
conv = Conv2D(6, 5)
out = conv(np.zeros((1, 32, 32, 3), "float32"))
dense_weights = 32 * 32 * 3 * int(np.prod(out.shape[1:]))
print("conv output", out.shape, "conv params", conv.count_params(), " dense weights", f"{dense_weights:,}")"""),
    ("md", """
## 7. Residual block, inception module, U-Net: shapes

Built with `pycnn.applications.blocks` on symbolic inputs; the summaries show how each block
keeps or changes the shape.
"""),
    ("code", """
from pycnn.applications import blocks, UNet

inp = Input((56, 56, 64))
res = Model(inp, blocks.residual_block(inp, 64), name="residual_block")
print("residual block:", res.input_shape, "->", res.output_shape, f"({res.count_params():,} params)")
inp = Input((56, 56, 64))
res2 = Model(inp, blocks.residual_block(inp, 128, strides=2, name="down"), name="residual_down")
print("residual block, stride 2:", res2.input_shape, "->", res2.output_shape)

inp = Input((28, 28, 192))
inception = Model(inp, blocks.inception_module(inp, 64, 96, 128, 16, 32, 32), name="inception_3a")
print("inception 3a:", inception.input_shape, "->", inception.output_shape, "(64 + 128 + 32 + 32 = 256 channels)")

unet = UNet(input_shape=(572, 572, 1), filters=8)
print("U-Net (valid padding):", unet.input_shape, "->", unet.output_shape)"""),
    ("md", """
## 8. A 1-D CNN on a synthetic seismic waveform

Noise-only traces against traces with an "event" (a decaying oscillation at a random time).
`Conv1D` works on `(batch, time, channels)` like `Conv2D` on images.
"""),
    ("code", """
rng = np.random.default_rng(0)
n, length = 400, 256
t = np.arange(length)
waves = rng.normal(0, 0.3, (n, length))
has_event = rng.integers(0, 2, n)
for i in np.flatnonzero(has_event):
    onset = rng.integers(20, length - 80)
    s = np.clip(t - onset, 0, None)
    waves[i] += (t >= onset) * np.exp(-s / 20) * np.sin(2 * np.pi * s / 8)
x_wave = waves[..., None].astype("float32")

plt.figure(figsize=(10, 2.5))
for k in range(2):
    i = np.flatnonzero(has_event == k)[0]
    plt.plot(waves[i] + 3 * k, label=["noise", "event"][k])
plt.legend(); plt.title("synthetic seismograms"); plt.show()

quake = Sequential([Input((length, 1)), Conv1D(8, 9, activation="relu"), MaxPooling1D(4),
                    Conv1D(16, 9, activation="relu"), GlobalMaxPooling1D(), Dense(1, activation="sigmoid")])
# global max pooling: "is there an event anywhere in the trace?"
quake.compile(optimizer=pycnn.optimizers.Adam(learning_rate=0.01), loss="binary_crossentropy", metrics=["accuracy"])
wave_history = quake.fit(x_wave[:300], has_event[:300], epochs=8, batch_size=32, verbose=0)
wave_accuracy = float(np.mean((quake.predict(x_wave[300:], verbose=0)[:, 0] > 0.5) == has_event[300:]))
print("held-out accuracy:", wave_accuracy)"""),
    ("md", """
## 9. What a trained LeNet-5 learned

pycnn ships LeNet-5 weights trained on MNIST. Its first-layer filters are small edge and
blob detectors; the feature maps show where each one responds on a digit.
"""),
    ("code", """
from pycnn.applications import LeNet5
from pycnn.datasets import mnist

lenet = LeNet5(weights="mnist")
(_, _), (x_digits, y_digits) = mnist.load_data(subset="sample")
digit = x_digits[:1, ..., None].astype("float32") / 255.0
print("LeNet-5 predicts", int(np.argmax(lenet.predict(digit, verbose=0))), "for a", int(y_digits[0]))
visualize.plot_filters(lenet.get_layer("conv1"))
plt.show()
visualize.plot_feature_maps(lenet, digit, "conv1")
plt.show()"""),
]
