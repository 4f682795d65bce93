"""The classifier head of fast.ai's Lesson 3 notebook (Keras 1, 2016), as it was written.

bnplace lints this file; it is never imported or run (Keras is not a dependency of bnplace).
Each hidden block puts BatchNormalization *after* Dropout, so BN learns statistics of the
dropped-out activations in training and sees different ones at inference (variance shift).
"""

from keras.layers import BatchNormalization, Dense, Dropout, Flatten, MaxPooling2D
from keras.models import Sequential
from keras.optimizers import Adam


def get_bn_layers(p, input_shape):
    return [
        MaxPooling2D(input_shape=input_shape),
        Flatten(),
        Dense(4096, activation='relu'),
        Dropout(p),
        BatchNormalization(),
        Dense(4096, activation='relu'),
        Dropout(p),
        BatchNormalization(),
        Dense(1000, activation='softmax'),
    ]


def get_bn_model(p, input_shape):
    bn_model = Sequential(get_bn_layers(p, input_shape))
    bn_model.compile(Adam(lr=1e-4), loss='categorical_crossentropy', metrics=['accuracy'])
    return bn_model
