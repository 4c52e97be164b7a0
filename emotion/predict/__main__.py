from emotion.predict.app import main

main()
