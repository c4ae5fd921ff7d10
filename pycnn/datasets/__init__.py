"""Datasets (MNIST, Fashion-MNIST, CIFAR-10), splitting and class inspection.

Loaders follow Keras: ``(x_train, y_train), (x_test, y_test) = mnist.load_data()``.
"""
from pycnn.datasets import cifar10, fashion_mnist, mnist
from pycnn.errors import IntegrityError
from pycnn.datasets.splitting import class_counts, plot_class_distribution, train_test_split

__all__ = ["mnist", "fashion_mnist", "cifar10", "train_test_split", "class_counts",
           "plot_class_distribution", "IntegrityError"]
