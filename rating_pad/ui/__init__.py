"""The pad's Kivy screen. Only modules under this package import Kivy."""
