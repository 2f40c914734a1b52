"""A functional Keras model with a residual block, written as Keras tutorials write them; only
the imports are cycnn's. Trains two epochs on 2,000 MNIST images."""
from cycnn import keras
from cycnn.keras import layers

(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
x_train = x_train[:2000].reshape(-1, 28, 28, 1).astype("float32") / 255
x_test = x_test[:1000].reshape(-1, 28, 28, 1).astype("float32") / 255
y_train, y_test = y_train[:2000], y_test[:1000]


def residual_block(x, filters):
    shortcut = x
    x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(filters, 3, padding="same")(x)
    x = layers.BatchNormalization(momentum=0.9)(x)
    x = layers.Add()([shortcut, x])
    return layers.Activation("relu")(x)


inputs = keras.Input(shape=(28, 28, 1))
x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(inputs)
x = residual_block(x, 16)
x = layers.MaxPooling2D(2)(x)
x = layers.GlobalAveragePooling2D()(x)
outputs = layers.Dense(10, activation="softmax")(x)
model = keras.Model(inputs=inputs, outputs=outputs, name="small_resnet")

model.summary()
model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-2),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(x_train, y_train, batch_size=32, epochs=2, validation_data=(x_test, y_test))
loss, acc = model.evaluate(x_test, y_test, verbose=0)
print("Test loss:", loss)
print("Test accuracy:", acc)
print("history keys:", sorted(history.history))
